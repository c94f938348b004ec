// Go programs that hold HTTP connections in each of the ways
// `leakless watch --pprof` names, each serving net/http/pprof.
//
//	leaky MODE [URL]
//
// Prints "pprof http://ADDR/debug/pprof/" (and, for `handler`, "listen
// ADDR") on stdout, then runs until stdin closes, or 120 s at most.
//
// Modes:
//   - body:     fetchUser never closes a response body; one request every
//     150 ms, each holding its connection (label callsite=fetchUser).
//   - idle:     four pooled connections used once, then idle.
//   - inflight: three requests to a URL that answers late, in flight
//     (label callsite=slowReport).
//   - h2:       two HTTP/2 connections to an in-process TLS server, idle.
//   - handler:  a server whose handler ignores its request's context and
//     waits forever; clients that give up leave CLOSE_WAIT behind.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	_ "net/http/pprof"
	"os"
	"runtime/pprof"
	"sync"
	"time"
)

func main() {
	mode := os.Args[1]
	url := ""
	if len(os.Args) > 2 {
		url = os.Args[2]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(ln, nil)
	fmt.Printf("pprof http://%s/debug/pprof/\n", ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	go func() {
		time.Sleep(120 * time.Second)
		os.Exit(0)
	}()
	ctx := context.Background()
	switch mode {
	case "body":
		pprof.Do(ctx, pprof.Labels("callsite", "fetchUser"), func(context.Context) {
			go fetchUsers(url)
		})
	case "idle":
		idlePool(url)
	case "inflight":
		pprof.Do(ctx, pprof.Labels("callsite", "slowReport"), func(context.Context) {
			for i := 0; i < 3; i++ {
				go slowReport(url)
			}
		})
	case "h2":
		h2()
	case "handler":
		handler()
	default:
		panic("unknown mode " + mode)
	}
	select {}
}

// fetchUser reads the status and forgets the body: never closed, so the
// connection is never reused or released.
func fetchUser(c *http.Client, url string) int {
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	return resp.StatusCode
}

func fetchUsers(url string) {
	c := &http.Client{}
	for {
		fetchUser(c, url)
		time.Sleep(150 * time.Millisecond)
	}
}

func idlePool(url string) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	// Each body is held unread until all four responses are in: a
	// connection carrying an unread body is busy, so the four requests
	// take four connections. Read as each finished, a request that
	// started late (a loaded machine) could reuse an earlier one's, and
	// the pool would hold three.
	var got, done sync.WaitGroup
	got.Add(4)
	for i := 0; i < 4; i++ {
		done.Add(1)
		go func() {
			defer done.Done()
			resp, err := c.Get(url)
			got.Done()
			if err != nil {
				return
			}
			got.Wait()
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	done.Wait()
}

func slowReport(url string) {
	resp, err := http.Get(url)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func h2() {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s\n", r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	for i := 0; i < 2; i++ {
		// A transport each (srv.Client() is one shared client): two
		// connections.
		tr := srv.Client().Transport.(*http.Transport).Clone()
		c := &http.Client{Transport: tr}
		resp, err := c.Get(srv.URL)
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			panic("not HTTP/2: " + resp.Proto)
		}
	}
}

// slowHandler waits for a result that never comes, without looking at
// r.Context(): a client that gives up leaves it parked and its socket in
// CLOSE_WAIT.
func slowHandler(w http.ResponseWriter, r *http.Request) {
	never := make(chan struct{})
	<-never
}

func handler() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Printf("listen %s\n", ln.Addr())
	go http.Serve(ln, http.HandlerFunc(slowHandler))
}
