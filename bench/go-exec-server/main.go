// A fork-per-call HTTP server in Go, as OpenFaaS's classic watchdog is: each request runs the
// function's program with os/exec, the request document on its stdin, and answers with its
// stdout. bench/spawn-floor.ts measures alyx's directly executed binary against it.
//
//	go-exec-server '{"name": {"command": [...], "cwd": "..."}}' PORT
//
// Listens on 127.0.0.1:PORT.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
)

type function struct {
	Command []string `json:"command"`
	Cwd     string   `json:"cwd"`
}

func main() {
	var functions map[string]function
	if err := json.Unmarshal([]byte(os.Args[1]), &functions); err != nil {
		panic(err)
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[1:]
		fn, ok := functions[name]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		input := json.RawMessage(body)
		if len(body) == 0 {
			input = json.RawMessage("{}")
		}
		token := make([]byte, 32)
		_, _ = rand.Read(token)
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		request, _ := json.Marshal(map[string]any{
			"request_id": hex.EncodeToString(id),
			"function":   name,
			"input":      input,
			"context":    map[string]any{"auth": nil, "env": map[string]string{}, "alyx_url": "", "internal_token": hex.EncodeToString(token)},
		})
		cmd := exec.Command(fn.Command[0], fn.Command[1:]...)
		cmd.Dir = fn.Cwd
		cmd.Stdin = bytes.NewReader(request)
		out, err := cmd.Output()
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
		}
		_, _ = w.Write(out)
	}
	if err := http.ListenAndServe("127.0.0.1:"+os.Args[2], http.HandlerFunc(handler)); err != nil {
		panic(err)
	}
}
