package bus

import "fmt"

// ConnEventsSubject is where the system account hears of connections of an
// account ending ("DISCONNECT") or starting ("CONNECT"); subscribe on a
// System connection.
func ConnEventsSubject(account, event string) string {
	return fmt.Sprintf("$SYS.ACCOUNT.%s.%s", account, event)
}

// ConnEvent is the part of the server's connect and disconnect advisories
// Convene reads: whose connection it was.
type ConnEvent struct {
	Type   string `json:"type"`
	Client struct {
		ID   uint64 `json:"id"`
		Name string `json:"name"`
	} `json:"client"`
	Reason string `json:"reason"`
}
