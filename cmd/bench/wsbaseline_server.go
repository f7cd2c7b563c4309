package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/coder/websocket"
)

// wsSubscribed is the one frame the bare server sends, so the tool's
// WebSocket clients count the connection as subscribed.
var wsSubscribed = []byte(`{"type":"subscribed","channel":"bare","position":"0-0"}`)

// runWSBaselineServer is the hidden subcommand "ws-baseline-server": the
// least a coder/websocket server can hold per connection. The handler
// accepts, sends one frame, hands reading to CloseRead and returns. It
// exits when stdin closes.
func runWSBaselineServer(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("ws-baseline-server takes no arguments")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", l.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(bareWS)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
	<-done
	return nil
}

func bareWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	if err := c.Write(r.Context(), websocket.MessageText, wsSubscribed); err != nil {
		c.CloseNow()
		return
	}
	c.CloseRead(context.Background())
}
