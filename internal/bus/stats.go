package bus

// Subscriptions is how many subscriptions the embedded server holds, over
// every connection and account: the server's memory grows with it, about
// a kilobyte each.
func (e *Embedded) Subscriptions() int { return int(e.srv.NumSubscriptions()) }
