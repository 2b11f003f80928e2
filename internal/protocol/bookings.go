package protocol

// Bookings (000 §7.3): numbers the CM booked ahead of any conference — a
// scheduled conference (RESERVE), a personal template (TEMPLET) or a fixed
// virtual meeting room (VIRTUAL). The scheduler of the booking's platform
// keeps them in the records database and reports them to its registry; a
// backup reports a failed master's, and forgets them when it recovers
// (000 §7.1, §7.2).
const (
	// CM -> scheduler, on SubjectCMMAU of the booking's platform (or of a
	// backup serving it). A put creates or replaces the booking of its
	// number; repeating it changes nothing.
	CMPutBookingReq   = "CM_MAU_PUTBOOKING_REQ"
	MAUPutBookingAck  = "MAU_CM_PUTBOOKING_ACK"
	MAUPutBookingNack = "MAU_CM_PUTBOOKING_NACK"
	// A delete of a number no longer booked answers BOOKING_NOT_FOUND,
	// which a retry may take as done.
	CMDeleteBookingReq   = "CM_MAU_DELBOOKING_REQ"
	MAUDeleteBookingAck  = "MAU_CM_DELBOOKING_ACK"
	MAUDeleteBookingNack = "MAU_CM_DELBOOKING_NACK"
	// Reads: one booking (BookingReq with E164, and Domain when the
	// caller is a tenant) or a domain's (BookingListReq).
	CMGetBookingReq    = "CM_MAU_GETBOOKING_REQ"
	MAUGetBookingAck   = "MAU_CM_GETBOOKING_ACK"
	MAUGetBookingNack  = "MAU_CM_GETBOOKING_NACK"
	CMListBookingsReq  = "CM_MAU_LISTBOOKINGS_REQ"
	MAUListBookingsAck = "MAU_CM_LISTBOOKINGS_ACK"
	MAUListBookingsNak = "MAU_CM_LISTBOOKINGS_NACK"

	// Scheduler -> registry: UPU_CLEAR_BOOKINGS_NTF (a RegistryClearNtf)
	// forgets the bookings and templates (every entry but running
	// conferences) a reporter reported of one source platform: a backup's
	// when its failed master recovers, a master's when it is switched
	// over (000 §7.2). Running conferences stay until they end.
	UPUClearBookingsNtf = "UPU_CLEAR_BOOKINGS_NTF"
)

// Booking is a booked number. Kind is EntryReserved, EntryTemplate (a
// personal template) or EntryVirtual. StartTime and EndTime (Unix
// milliseconds) bound a scheduled conference and are zero for the other
// kinds. Platform is the booking's source platform, set by the scheduler
// from the user domain; CreateTime, ModifyTime and Version are the
// records database's.
type Booking struct {
	E164       string `json:"e164"`
	Kind       int    `json:"kind"`
	Name       string `json:"name,omitempty"`
	Domain     string `json:"moid"`
	Platform   string `json:"platformmoid,omitempty"`
	StartTime  int64  `json:"starttime,omitempty"`
	EndTime    int64  `json:"endtime,omitempty"`
	CreateTime int64  `json:"createtime,omitempty"`
	ModifyTime int64  `json:"modifytime,omitempty"`
	Version    int64  `json:"version,omitempty"`
}

// BookingReq is CM_MAU_PUTBOOKING_REQ, CM_MAU_DELBOOKING_REQ and
// CM_MAU_GETBOOKING_REQ (for the last two, E164 and optionally Domain:
// a booking of another domain is answered as not found).
type BookingReq struct {
	Type    string  `json:"type"`
	Booking Booking `json:"booking"`
}

// BookingAck is MAU_CM_PUTBOOKING_ACK, MAU_CM_DELBOOKING_ACK (the booking
// removed) and MAU_CM_GETBOOKING_ACK.
type BookingAck struct {
	Type    string  `json:"type"`
	Booking Booking `json:"booking"`
}

// BookingListReq is CM_MAU_LISTBOOKINGS_REQ: a user domain's bookings.
type BookingListReq struct {
	Type   string `json:"type"`
	Domain string `json:"moid"`
}

// BookingListAck is MAU_CM_LISTBOOKINGS_ACK, by number.
type BookingListAck struct {
	Type     string    `json:"type"`
	Bookings []Booking `json:"bookings"`
}
