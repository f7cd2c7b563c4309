// Package auth decides who a connection or an API call comes from and what
// it may do: JWT verification (HS256 from a secret, RS256 and ES256 from a
// PEM key or a JWKS URL), API keys, the channel rules a token's claims
// grant, and single-use tickets kept in Redis that a page puts in a URL
// instead of its token.
//
// The transport asks one question per request (Auth.Authenticate) and gets
// a Principal whose CanRead and CanPublish answer every later question
// without I/O, so nothing here runs on the delivery path.
package auth
