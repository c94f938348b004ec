// A Go client with keep-alives disabled: net/http sends `Connection: close`,
// the server closes first, and every request dials a new connection.
//
//	go run no_keepalive.go URL RATE SECONDS
//
// Sends RATE requests a second (paced), for SECONDS at most, then exits.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	url := os.Args[1]
	rate, _ := strconv.Atoi(os.Args[2])
	seconds, _ := strconv.Atoi(os.Args[3])
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	sent, failed := 0, 0
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		elapsed := time.Since(start).Seconds()
		if elapsed >= float64(seconds) {
			break
		}
		for float64(sent) < elapsed*float64(rate) {
			sent++
			resp, err := client.Get(url)
			if err != nil {
				failed++
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	fmt.Fprintf(os.Stderr, "sent %d, failed %d\n", sent, failed)
}
