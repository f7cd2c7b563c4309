// Package publish owns publishing: a publish request checked as the
// protocol says, appended to its channel's stream, or handed to the
// cluster when it is for one client wherever it is connected. The HTTP
// API and WebSocket publish frames both go through it, so they refuse and
// answer alike.
package publish

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/pushcluster/pushcluster/pkg/cluster"
	"github.com/pushcluster/pushcluster/pkg/protocol"
	"github.com/pushcluster/pushcluster/pkg/store"
)

// DefaultMaxPayload is the largest data a publish may carry.
const DefaultMaxPayload = 64 << 10

// maxClientID bounds a client ID a publish names.
const maxClientID = 64

// Appender appends a message to a channel and returns its entry ID, or,
// with an idempotency key, unless the key was published before (dup, and
// the first one's ID). It must be safe for concurrent use. *store.Store
// and *store.Publisher implement it.
type Appender interface {
	Publish(ctx context.Context, channel string, m store.Message) (protocol.ID, error)
	PublishOnce(ctx context.Context, channel string, m store.Message, key string) (id protocol.ID, dup bool, err error)
}

// Deliverer hands a message to one client on whichever node holds it. It
// must be safe for concurrent use and return within its own deadline.
// *cluster.Cluster implements it.
type Deliverer interface {
	Deliver(ctx context.Context, client string, m cluster.Direct) (cluster.Delivery, error)
}

var (
	_ Appender  = (*store.Store)(nil)
	_ Appender  = (*store.Publisher)(nil)
	_ Deliverer = (*cluster.Cluster)(nil)
)

// Config configures a Publisher. Zero values are the defaults named on
// each field.
type Config struct {
	// Appender appends to channels. Required.
	Appender Appender
	// Cluster delivers messages to one client. Required.
	Cluster Deliverer
	// MaxPayload is the largest data a publish may carry, in bytes. Zero
	// means DefaultMaxPayload.
	MaxPayload int
	// Logger receives failed appends. Nil means discard.
	Logger *slog.Logger
}

// Publisher checks and carries out publishes. It is safe for concurrent
// use.
type Publisher struct {
	cfg Config
}

// New returns a Publisher for cfg.
func New(cfg Config) (*Publisher, error) {
	var errs []error
	if cfg.Appender == nil {
		errs = append(errs, errors.New("publish: no appender"))
	}
	if cfg.Cluster == nil {
		errs = append(errs, errors.New("publish: no cluster"))
	}
	if cfg.MaxPayload < 0 {
		errs = append(errs, errors.New("publish: MaxPayload must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{cfg: cfg}, nil
}

// Error is a refused publish: the HTTP status and code that answer it, and
// why. WebSocket error frames carry the code.
type Error struct {
	Status int
	Code   string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }

func refuse(status int, code string, err error) *Error { return &Error{status, code, err} }

// Publish appends req to its channel and answers its entry ID; with an
// idempotency key already published within the window, it stores nothing
// and answers the first one's ID, marked Duplicate.
func (p *Publisher) Publish(ctx context.Context, req protocol.PublishRequest) (protocol.PublishAnswer, *Error) {
	if err := p.checkData(req.Data); err != nil {
		return protocol.PublishAnswer{}, err
	}
	switch {
	case len(req.To) > maxClientID || len(req.Exclude) > maxClientID:
		return protocol.PublishAnswer{}, refuse(http.StatusBadRequest, protocol.CodeInvalidClient, errors.New("client ID longer than 64 bytes"))
	case req.To != "" && req.To == req.Exclude:
		return protocol.PublishAnswer{}, refuse(http.StatusBadRequest, protocol.CodeInvalidClient,
			fmt.Errorf("to and exclude both name client %q: nobody would receive it", req.To))
	}
	m := store.Message{Event: req.Event, Data: req.Data, To: req.To, Exclude: req.Exclude}
	var (
		id  protocol.ID
		dup bool
		err error
	)
	if req.IdempotencyKey != "" {
		id, dup, err = p.cfg.Appender.PublishOnce(ctx, req.Channel, m, req.IdempotencyKey)
	} else {
		id, err = p.cfg.Appender.Publish(ctx, req.Channel, m)
	}
	switch {
	case errors.Is(err, protocol.ErrInvalidChannel), errors.Is(err, store.ErrIdempotentChannel):
		return protocol.PublishAnswer{}, refuse(http.StatusBadRequest, protocol.CodeInvalidChannel, err)
	case errors.Is(err, protocol.ErrInvalidEvent):
		return protocol.PublishAnswer{}, refuse(http.StatusBadRequest, protocol.CodeInvalidEvent, err)
	case errors.Is(err, protocol.ErrInvalidIdempotencyKey):
		return protocol.PublishAnswer{}, refuse(http.StatusBadRequest, protocol.CodeInvalidKey, err)
	case errors.Is(err, store.ErrUnreadable):
		return protocol.PublishAnswer{}, refuse(http.StatusConflict, protocol.CodeUnreadable, err)
	case err != nil:
		p.cfg.Logger.Warn("publish failed", "channel", req.Channel, "err", err)
		return protocol.PublishAnswer{}, refuse(http.StatusServiceUnavailable, protocol.CodeUnavailable, errors.New("the store is unavailable"))
	}
	return protocol.PublishAnswer{ID: id.String(), Duplicate: dup}, nil
}

// Direct sends req to one client on whichever node holds it.
func (p *Publisher) Direct(ctx context.Context, req protocol.PublishRequest) (protocol.DirectAnswer, *Error) {
	switch {
	case req.Channel != "":
		return protocol.DirectAnswer{}, refuse(http.StatusBadRequest, protocol.CodeInvalidClient, errors.New("give channel or client, not both"))
	case req.To != "" || req.Exclude != "":
		return protocol.DirectAnswer{}, refuse(http.StatusBadRequest, protocol.CodeInvalidClient, errors.New("to and exclude go with a channel"))
	case len(req.Client) > maxClientID:
		return protocol.DirectAnswer{}, refuse(http.StatusBadRequest, protocol.CodeInvalidClient, errors.New("client ID longer than 64 bytes"))
	case req.IdempotencyKey != "":
		return protocol.DirectAnswer{}, refuse(http.StatusBadRequest, protocol.CodeInvalidKey,
			errors.New("an idempotency key goes with a channel publish: a message to one client is live, at most once"))
	case req.Data == "":
		return protocol.DirectAnswer{}, refuse(http.StatusBadRequest, protocol.CodeInvalidData, errors.New("a message to one client needs data"))
	}
	if err := p.checkData(req.Data); err != nil {
		return protocol.DirectAnswer{}, err
	}
	if err := protocol.ValidateEvent(req.Event); err != nil {
		return protocol.DirectAnswer{}, refuse(http.StatusBadRequest, protocol.CodeInvalidEvent, err)
	}
	m := cluster.Direct{ID: newDirectID(), Event: req.Event, Data: req.Data}
	d, err := p.cfg.Cluster.Deliver(ctx, req.Client, m)
	res := protocol.DirectAnswer{ID: m.ID, Delivered: d.Connections > 0, Connections: d.Connections,
		Nodes: d.Nodes, Partial: d.Partial, Missing: d.Missing}
	if res.Nodes == nil {
		res.Nodes = []string{}
	}
	if res.Missing == nil {
		res.Missing = []string{}
	}
	switch {
	case errors.Is(err, cluster.ErrNotFound):
		return res, refuse(http.StatusNotFound, protocol.CodeNotFound, fmt.Errorf("no node holds client %q", req.Client))
	case !res.Delivered && res.Partial:
		return res, refuse(http.StatusServiceUnavailable, protocol.CodePartial,
			fmt.Errorf("client %q not found on the nodes that answered; %v did not", req.Client, res.Missing))
	}
	return res, nil
}

func (p *Publisher) checkData(data string) *Error {
	switch {
	case len(data) > p.cfg.MaxPayload:
		return refuse(http.StatusRequestEntityTooLarge, protocol.CodeTooLarge,
			fmt.Errorf("data is %d bytes, more than %d", len(data), p.cfg.MaxPayload))
	case !utf8.ValidString(data):
		return refuse(http.StatusBadRequest, protocol.CodeBadJSON, errors.New("data is not UTF-8"))
	}
	return nil
}

// newDirectID names a message to one client, so its sender and receiver
// can match it: it is in no stream, so it has no entry ID.
func newDirectID() string {
	var b [9]byte
	rand.Read(b[:])
	return "d-" + base64.RawURLEncoding.EncodeToString(b[:])
}
