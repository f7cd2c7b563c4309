package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pushcluster/pushcluster/pkg/client"
)

// Subscribe to a channel and publish to it. exampleURL is a node on this
// machine; give yours, or a load balancer in front of several.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(client.Config{URLs: []string{exampleURL}})
	if err != nil {
		log.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, []string{"example-news"}, "")
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	for sub.Node() == "" { // connected: what is published now reaches it
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := c.Publish(ctx, "example-news", "hello", client.WithEvent("greeting")); err != nil {
		log.Fatal(err)
	}
	ev, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	m := ev.(*client.Message)
	fmt.Println(m.Channel, m.Event, m.Data)
	// Output: example-news greeting hello
}

// Go on from where an earlier subscription stopped, on any node and over
// any transport: what was published meanwhile arrives first, and what is
// no longer there arrives as a *client.Gap.
func ExampleClient_Subscribe_resume() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _ := client.New(client.Config{URLs: []string{exampleURL}, Transport: client.TransportPoll})
	first, _ := c.Publish(ctx, "example-log", "one")
	c.Publish(ctx, "example-log", "two")
	c.Publish(ctx, "example-log", "three")

	sub, err := c.Subscribe(ctx, []string{"example-log"}, first) // after "one"
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	for range 2 {
		ev, err := sub.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		switch e := ev.(type) {
		case *client.Message:
			fmt.Println(e.Data)
		case *client.Gap:
			fmt.Println("may have missed some:", e.Reason)
		}
	}
	// Output:
	// two
	// three
}
