// Package protocol holds the messages Convene's services exchange on the bus,
// as plain Go structs with no behaviour. Every message is a JSON object whose
// "type" field keeps the seed's message name.
//
// Parties: CM is the conference manager (the REST API plays it), MAU is the
// scheduler, MCU a media node, RMS the resource manager, UPU the registry,
// PMS the platform monitor.
//
// The seeds spell the media-node party both CMU_ and MCU_. Convene uses MCU_
// everywhere; the seed's variants are, for the record:
//
//	CMU_MAU_CREATECONF_ACK      = MCU_MAU_CREATECONF_ACK
//	CMU_MAU_RESTORECONF_ACK     = MCU_MAU_RESTORECONF_ACK
//	CMU_MAU_CONFLIST_NTF        = MCU_MAU_CONFLIST_NTF
//	MAU_CMU_RESTORECONF_REQ     = MAU_MCU_RESTORECONF_REQ
//	MAU_CMU_CONFDURATION_NTF    = MAU_MCU_CONFDURATION_NTF
//	CMU_CM_MODIFYCONFNAME_REQ   = MCU_CM_MODIFYCONFNAME_REQ
//	CM_CMU_MODIFYCONFNAME_ACK   = CM_MCU_MODIFYCONFNAME_ACK
//	CM_CMU_MODIFYCONFNAME_NACK  = CM_MCU_MODIFYCONFNAME_NACK
//	CM_MAU_CONFDURATION_NTF     = MAU_CM_CONFDURATION_NTF (scheduler to CM)
//
// Messages Convene adds beyond the seeds (node registration and heartbeat,
// CM-initiated rename and password change, monitoring requests, registry
// reports, bookings) follow the same SENDER_RECEIVER_ACTION_KIND pattern.
//
// This package imports only internal/codes of Convene's (its error codes
// are the codebook's).
package protocol
