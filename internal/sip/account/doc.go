// Package account is the account API of seed 003 (双活接口方案): before it
// calls, a terminal asks any SIP node, over HTTP, which account to use,
// and the node answers with its own.
//
//	POST /AgoraAccount
//	{"method":"getAgoraAccount","streamNumber":"89567",
//	 "token":"F49C2538DD7B74F217850F3FAA2D0062","timestamp":"20190601120000"}
//	200 {"method":"getAgoraAccount","streamNumber":"89567","resCode":"0","account":"sipserver"}
//
// The token is the MD5 of appid + timestamp in upper-case hex, compared in
// constant time; the timestamp (YYYYMMDDhhmmss, the node's local time)
// must be within an hour of the node's clock. A bad token or timestamp
// answers resCode "1"; a body that is not such a request answers 400 with
// the API's error envelope.
//
// The handler is a plain http.Handler: Service serves it on a listener of
// its own (003's port plan, 14500 by default), and Handler mounts it on
// another server (the REST API's). It imports no Convene package.
package account
