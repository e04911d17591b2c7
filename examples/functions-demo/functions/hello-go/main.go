// A function reads one JSON request on stdin and writes one JSON response on stdout.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

type request struct {
	Input struct {
		Name string `json:"name"`
	} `json:"input"`
}

// ranFrom tells the compiled bin/hello-go (inside the function folder, the working directory)
// from the temporary binary that "go run ." builds.
func ranFrom() (string, string) {
	executable, err := os.Executable()
	if err != nil {
		return "unknown", ""
	}
	dir, _ := os.Getwd()
	relative, err := filepath.Rel(dir, executable)
	if err == nil && !strings.HasPrefix(relative, "..") {
		return "build", relative
	}
	return "source", "main.go"
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
			"success": false,
			"error":   map[string]any{"code": "BAD_REQUEST", "message": err.Error()},
		})
		return
	}
	name := req.Input.Name
	if name == "" {
		name = "World"
	}
	from, file := ranFrom()
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"success": true,
		"output": map[string]any{
			"message":  fmt.Sprintf("Hello, %s! (from Go)", name),
			"runtime":  "go",
			"ran_from": from,
			"file":     file,
			"mode":     os.Getenv("ALYX_MODE"),
		},
	})
}
