package medianode

import (
	"context"
	"fmt"
	"strconv"

	"github.com/convene/convene/internal/protocol"
)

// RequestRename asks the CM, through the scheduler, to rename a conference
// the node hosts (MCU_CM_MODIFYCONFNAME_REQ, 000 §5.1). The answer comes
// back later on the node's subject: CM_MCU_MODIFYCONFNAME_ACK applies the
// name and is reported with MCU_MAU_CONFSTATECHANGE_NTF; a NACK keeps the
// old name. It returns the request's mtreqid.
func (n *Node) RequestRename(e164, name string) (string, error) {
	s, err := n.running()
	if err != nil {
		return "", err
	}
	if !n.Hosts(e164) {
		return "", fmt.Errorf("%w: %s on %s", ErrNotHosted, e164, n.opts.ID)
	}
	id := n.opts.ID + "-" + strconv.FormatUint(n.seq.Add(1), 10)
	req := protocol.ModifyConfNameReq{
		Type:    protocol.MCUCMModifyConfNameReq,
		E164:    e164,
		Name:    name,
		IP:      n.opts.IP,
		PID:     s.pid,
		MtReqID: id,
	}
	if err := n.bus.Publish(protocol.SubjectFromNodes(n.opts.Platform), req); err != nil {
		return "", fmt.Errorf("medianode: %s: rename %s: %w", n.opts.ID, e164, err)
	}
	return id, nil
}

// RequestDelay asks the scheduler to lengthen a conference the node hosts
// by minutes (MCU_MAU_DELAYCONF_REQ). On MAU_MCU_DELAYCONF_ACK the node
// records the new end time and returns it; a NACK comes back as a
// *bus.NackError.
func (n *Node) RequestDelay(ctx context.Context, e164 string, minutes int) (protocol.ConfDurationNtf, error) {
	var ack protocol.ConfDurationNtf
	if _, err := n.running(); err != nil {
		return ack, err
	}
	if !n.Hosts(e164) {
		return ack, fmt.Errorf("%w: %s on %s", ErrNotHosted, e164, n.opts.ID)
	}
	req := protocol.DelayConfReq{Type: protocol.MCUDelayConfReq, E164: e164, Minutes: minutes}
	if err := n.bus.Call(ctx, protocol.SubjectFromNodes(n.opts.Platform), req, &ack); err != nil {
		return ack, fmt.Errorf("medianode: %s: delay %s: %w", n.opts.ID, e164, err)
	}
	n.update(e164, func(c *conf) { c.endTime, c.duration = ack.EndTime, ack.DurationMinutes })
	return ack, nil
}
