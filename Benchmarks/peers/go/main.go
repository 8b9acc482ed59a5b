// The Go peer for scripts/bench: net/http/fcgi (standard library only), answering the
// probe's benchmark endpoints (/hello, /echo, /big?bytes=, /count), routed on the end of
// SCRIPT_NAME + PATH_INFO like gateway-probe. net/http/fcgi multiplexes requests on a
// connection, so it is the peer for fcgi-load's multiplexed runs.
//
//	go build -o fcgi-go . && ./fcgi-go /path/to/socket
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"path"
	"strconv"
)

var hello = []byte("Hello, world!")
var chunk = bytes.Repeat([]byte("x"), 64*1024)

func handle(w http.ResponseWriter, r *http.Request) {
	env := fcgi.ProcessEnv(r)
	name := path.Base(env["SCRIPT_NAME"] + env["PATH_INFO"])
	if name == "." || name == "/" {
		name = path.Base(r.URL.Path)
	}
	switch name {
	case "hello":
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	case "echo":
		w.Header().Set("Content-Type", "application/octet-stream")
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	case "count":
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, n)
	case "big":
		left := int64(64 << 20)
		if v, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64); err == nil && v >= 0 {
			left = v
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(left, 10))
		for left > 0 {
			n := int64(len(chunk))
			if left < n {
				n = left
			}
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			left -= n
		}
	default:
		http.NotFound(w, r)
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fcgi-go SOCKET_PATH")
		os.Exit(2)
	}
	os.Remove(os.Args[1])
	listener, err := net.Listen("unix", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(os.Args[1], 0666)
	if err := fcgi.Serve(listener, http.HandlerFunc(handle)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
