package protocol

// Message type names. Grouped by the parties that exchange them.
const (
	// CM <-> scheduler: booking and control.
	CMCreateConfReq      = "CM_MAU_CREATECONF_REQ"
	MAUCreateConfAck     = "MAU_CM_CREATECONF_ACK"
	MAUCreateConfNack    = "MAU_CM_CREATECONF_NACK"
	CMReleaseConfReq     = "CM_MAU_RELEASECONF_REQ"
	MAUReleaseConfAck    = "MAU_CM_RELEASECONF_ACK"
	MAUReleaseConfNack   = "MAU_CM_RELEASECONF_NACK"
	MAUReleaseConfNtf    = "MAU_CM_RELEASECONF_NTF"
	CMDelayConfReq       = "CM_MAU_DELAYCONF_REQ"
	MAUDelayConfAck      = "MAU_CM_DELAYCONF_ACK"
	MAUDelayConfNack     = "MAU_CM_DELAYCONF_NACK"
	MAUConfDurationNtf   = "MAU_CM_CONFDURATION_NTF"
	MAUConfWillEndNtf    = "MAU_CM_CONFWILLEND_NTF"
	MAUConfStateNtf      = "MAU_CM_CONFSTATE_NTF"
	CMModifyConfNameReq  = "CM_MAU_MODIFYCONFNAME_REQ"
	MAUModifyConfNameAck = "MAU_CM_MODIFYCONFNAME_ACK"
	MAUModifyConfNameNak = "MAU_CM_MODIFYCONFNAME_NACK"
	CMModifyPasswordReq  = "CM_MAU_MODIFYPASSWORD_REQ"
	MAUModifyPasswordAck = "MAU_CM_MODIFYPASSWORD_ACK"
	MAUModifyPasswordNak = "MAU_CM_MODIFYPASSWORD_NACK"
	CMStartMonitorReq    = "CM_MAU_STARTMONITOR_REQ"
	MAUStartMonitorAck   = "MAU_CM_STARTMONITOR_ACK"
	MAUStartMonitorNack  = "MAU_CM_STARTMONITOR_NACK"
	CMStopMonitorReq     = "CM_MAU_STOPMONITOR_REQ"
	MAUStopMonitorAck    = "MAU_CM_STOPMONITOR_ACK"
	MAUStopMonitorNack   = "MAU_CM_STOPMONITOR_NACK"
	CMMonitorKeepAlive   = "CM_MAU_MONITORKEEPALIVE_NTF"
	MAUMonitorStoppedNtf = "MAU_CM_MONITORSTOPPED_NTF"

	// Public templates (000 §10).
	CMCreateTemplateReq  = "CM_MAU_CREATETEMPLATE_REQ"
	MAUCreateTemplateAck = "MAU_CM_CREATETEMPLATE_ACK"
	MAUCreateTemplateNak = "MAU_CM_CREATETEMPLATE_NACK"
	CMModifyTemplateReq  = "CM_MAU_MDFTEMPLATE_REQ"
	MAUModifyTemplateAck = "MAU_CM_MDFTEMPLATE_ACK"
	MAUModifyTemplateNak = "MAU_CM_MDFTEMPLATE_NACK"
	CMDeleteTemplateReq  = "CM_MAU_DELTEMPLATE_REQ"
	MAUDeleteTemplateAck = "MAU_CM_DELTEMPLATE_ACK"
	MAUDeleteTemplateNak = "MAU_CM_DELTEMPLATE_NACK"

	// Node-originated rename, relayed to the CM and back (000 §5.1).
	MCUCMModifyConfNameReq = "MCU_CM_MODIFYCONFNAME_REQ"
	CMMCUModifyConfNameAck = "CM_MCU_MODIFYCONFNAME_ACK"
	CMMCUModifyConfNameNak = "CM_MCU_MODIFYCONFNAME_NACK"

	// Scheduler <-> media node.
	MAUMCUCreateConfReq     = "MAU_MCU_CREATECONF_REQ"
	MCUCreateConfAck        = "MCU_MAU_CREATECONF_ACK"
	MCUCreateConfNack       = "MCU_MAU_CREATECONF_NACK"
	MAUMCURestoreConfReq    = "MAU_MCU_RESTORECONF_REQ"
	MCURestoreConfAck       = "MCU_MAU_RESTORECONF_ACK"
	MCURestoreConfNack      = "MCU_MAU_RESTORECONF_NACK"
	MAUMCUReleaseConfCmd    = "MAU_MCU_RELEASECONF_CMD"
	MCUReleaseConfAck       = "MCU_MAU_RELEASECONF_ACK"
	MAUMCUConfDurationNtf   = "MAU_MCU_CONFDURATION_NTF"
	MAUMCUConfWillEndNtf    = "MAU_MCU_CONFWILLEND_NTF"
	MAUMCUModifyConfNameReq = "MAU_MCU_MODIFYCONFNAME_REQ"
	MCUModifyConfNameAck    = "MCU_MAU_MODIFYCONFNAME_ACK"
	MCUModifyConfNameNack   = "MCU_MAU_MODIFYCONFNAME_NACK"
	MAUMCUModifyPasswordReq = "MAU_MCU_MODIFYPASSWORD_REQ"
	MCUModifyPasswordAck    = "MCU_MAU_MODIFYPASSWORD_ACK"
	MCUModifyPasswordNack   = "MCU_MAU_MODIFYPASSWORD_NACK"
	MAUMCUStartMonitorReq   = "MAU_MCU_STARTMONITOR_REQ"
	MCUStartMonitorAck      = "MCU_MAU_STARTMONITOR_ACK"
	MCUStartMonitorNack     = "MCU_MAU_STARTMONITOR_NACK"
	MAUMCUStopMonitorCmd    = "MAU_MCU_STOPMONITOR_CMD"
	MCUConfListNtf          = "MCU_MAU_CONFLIST_NTF"
	MAUMCUGetConfListCmd    = "MAU_MCU_GETCONFLIST_CMD"
	MCUConfStateChangeNtf   = "MCU_MAU_CONFSTATECHANGE_NTF"
	MCUReleaseConfNtf       = "MCU_MAU_RELEASECONF_NTF"
	MCUDelayConfReq         = "MCU_MAU_DELAYCONF_REQ"
	MAUMCUDelayConfAck      = "MAU_MCU_DELAYCONF_ACK"
	MAUMCUDelayConfNack     = "MAU_MCU_DELAYCONF_NACK"

	// Media node <-> RMS: registration, liveness, node list.
	MCURegisterReq    = "MCU_RMS_REGISTER_REQ"
	RMSRegisterAck    = "RMS_MCU_REGISTER_ACK"
	RMSRegisterNack   = "RMS_MCU_REGISTER_NACK"
	MCUHeartbeatNtf   = "MCU_RMS_HEARTBEAT_NTF"
	MCUUnregisterNtf  = "MCU_RMS_UNREGISTER_NTF"
	RMSNodeStateNtf   = "RMS_NODE_STATE_NTF"
	RMSNodeListReq    = "RMS_NODELIST_REQ"
	RMSNodeListAck    = "RMS_NODELIST_ACK"
	RMSRoomListReq    = "RMS_ROOMLIST_REQ"
	RMSRoomListAck    = "RMS_ROOMLIST_ACK"
	RMSGetResReq      = "GET_RES_REQ"
	RMSGetResAck      = "GET_RES_ACK"
	RMSGetResNack     = "GET_RES_NACK"
	ServerRoomStateNt = "SERVER_ROOM_STATE_NOTIFY"
	ServerRoomStateRq = "SERVER_ROOM_STATE_REQ"
	ServerRoomSetRq   = "SERVER_ROOM_SET_REQ"
	ServerRoomSetAck  = "SERVER_ROOM_SET_ACK"
	ServerRoomSetNack = "SERVER_ROOM_SET_NACK"

	// Scheduler -> registry (UPU).
	UPUConfAddNtf   = "UPU_CONF_ADD_NTF"
	UPUConfDelNtf   = "UPU_CONF_DEL_NTF"
	UPUClearNtf     = "UPU_CLEAR_NTF"
	UPUResyncReq    = "UPU_RESYNC_REQ"
	UPUQueryReq     = "UPU_QUERY_REQ"
	UPUQueryAck     = "UPU_QUERY_ACK"
	UPUQueryNack    = "UPU_QUERY_NACK"
	UPUListReq      = "UPU_LIST_REQ"
	UPUListAck      = "UPU_LIST_ACK"
	ErrorReplyType  = "ERROR"
	GenericAckType  = "ACK"
	GenericNackType = "NACK"
)

// Header is the part every message has.
type Header struct {
	Type string `json:"type"`
}

// Nack is the shape every *_NACK shares: an error code and a sentence.
type Nack struct {
	Type    string `json:"type"`
	E164    string `json:"e164,omitempty"`
	ErrCode string `json:"errcode"`
	ErrMsg  string `json:"errmsg,omitempty"`
}

// Ack is a bare acknowledgement.
type Ack struct {
	Type string `json:"type"`
	E164 string `json:"e164,omitempty"`
}
