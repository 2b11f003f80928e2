// Package cdr keeps the calls of the SIP edge (seed 003): the recorder
// the edge reports each call's start, answer and end to, and each SIP
// message and routing decision as the call's log lines; one call record
// per call, however many nodes or retries report its end; hourly and
// daily roll-ups, in all and by caller and called number and prefix,
// kept in the same transaction as each record; and what
// operators and the bank's systems read: records queried by time, type,
// caller, called and connected with cursor pagination, statistics per
// hour or day, CSV export, the calls live now with a feed of their
// changes, and log lines with retention. A generator writes realistic
// calls through the same recorder, for tests, demos and benchmarks.
//
// Days and hours are those of the platform's time zone (Options.TimeZone,
// UTC unless set); the roll-ups of a records database are kept in one
// zone, recorded in the database, and a service configured with another
// refuses to start until they are rebuilt (RebuildRollups).
//
// cdr is a service (tier 3): it imports records (SQL), protocol (error
// codes, text rules) and the standard library; it must never import the
// SIP edge, the API, the host or the command line, which use it through
// its methods (the edge through a recorder interface it declares).
package cdr
