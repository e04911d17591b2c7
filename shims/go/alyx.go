// alyx's helper for Go functions. `alyx new --runtime go` copies this file beside main.go;
// it needs nothing but the standard library. main.go calls Handle:
//
//	func main() {
//		Handle(func(input Input, ctx *Context) (Output, error) { ... })
//	}
//
// Handle speaks alyx's stdin/stdout protocol: one request per process, or many, one line
// each, when alyx starts the process with ALYX_REUSE=1. Its names share package main with
// the function's own; the helper's unexported ones start with "alyx" to stay out of the way.

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// FunctionError is an error the function reports on purpose: it becomes the response's error.
// Status, when between 400 and 599, becomes the HTTP status; Details is any JSON value.
type FunctionError struct {
	Code    string
	Message string
	Status  int
	Details any
}

// NewFunctionError is a FunctionError without status or details.
func NewFunctionError(code, message string) *FunctionError {
	return &FunctionError{Code: code, Message: message}
}

func (e *FunctionError) Error() string { return e.Code + ": " + e.Message }

func (e *FunctionError) alyxBody() alyxErrorBody {
	body := alyxErrorBody{Code: e.Code, Message: e.Message, Details: e.Details}
	if e.Status >= 400 && e.Status <= 599 {
		body.Status = e.Status
	}
	return body
}

// Logger is ctx.Log: its entries go into the response's logs, which alyx writes to its log.
// It may be used from several goroutines of one invocation.
type Logger struct {
	mu      sync.Mutex
	entries []alyxLogEntry
}

// Debug logs message with data, if given (several values become an array).
func (l *Logger) Debug(message string, data ...any) { l.add("debug", message, data) }

// Info logs message with data, if given (several values become an array).
func (l *Logger) Info(message string, data ...any) { l.add("info", message, data) }

// Warn logs message with data, if given (several values become an array).
func (l *Logger) Warn(message string, data ...any) { l.add("warn", message, data) }

// Error logs message with data, if given (several values become an array).
func (l *Logger) Error(message string, data ...any) { l.add("error", message, data) }

func (l *Logger) add(level, message string, data []any) {
	entry := alyxLogEntry{Level: level, Message: message}
	var value any
	if len(data) == 1 {
		value = data[0]
	} else if len(data) > 1 {
		value = data
	}
	if value != nil {
		// Encoded now, so that a log entry can never make the whole response unwritable.
		encoded, err := json.Marshal(value)
		if err != nil {
			encoded, _ = json.Marshal(fmt.Sprintf("%+v", value))
		}
		entry.Data = encoded
	}
	entry.Timestamp = time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	l.mu.Lock()
	l.entries = append(l.entries, entry)
	l.mu.Unlock()
}

func (l *Logger) taken() []alyxLogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		return []alyxLogEntry{}
	}
	return l.entries
}

// Context is what alyx tells a function about its invocation (the request's context), and its tools.
// Fields the request lacks are zero: Auth and Trigger nil, Attempt 0, Traceparent "".
type Context struct {
	RequestID   string
	Function    string
	Auth        map[string]any
	Env         map[string]string
	Trigger     map[string]any
	Attempt     int
	Traceparent string
	Log         *Logger

	alyxURL       string
	internalToken string
}

// Invoke runs another function through alyx and returns its output as JSON. Its error comes
// back as a *FunctionError whose Status is alyx's HTTP status.
func (c *Context) Invoke(name string, input any) (json.RawMessage, error) {
	if c.alyxURL == "" || c.internalToken == "" {
		return nil, NewFunctionError("INVOKE_FAILED", "ctx.Invoke needs the alyx_url and internal_token that alyx puts in the request's context")
	}
	if input == nil {
		input = map[string]any{}
	}
	body, err := json.Marshal(input)
	if err != nil {
		return nil, NewFunctionError("INVOKE_FAILED", fmt.Sprintf("the input for %s is not JSON: %v", name, err))
	}
	target := strings.TrimRight(c.alyxURL, "/") + "/api/functions/" + url.PathEscape(name)
	call, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, NewFunctionError("INVOKE_FAILED", fmt.Sprintf("could not invoke %s: %v", name, err))
	}
	call.Header.Set("Content-Type", "application/json")
	call.Header.Set("Authorization", "Bearer "+c.internalToken)
	if c.Traceparent != "" {
		call.Header.Set("traceparent", c.Traceparent)
	}
	answer, err := http.DefaultClient.Do(call)
	if err != nil {
		return nil, NewFunctionError("INVOKE_FAILED", fmt.Sprintf("could not reach alyx to invoke %s: %v", name, err))
	}
	defer answer.Body.Close()
	raw, err := io.ReadAll(answer.Body)
	if err != nil {
		return nil, NewFunctionError("INVOKE_FAILED", fmt.Sprintf("could not read the answer of %s: %v", name, err))
	}
	status := 0
	if answer.StatusCode >= 400 && answer.StatusCode <= 599 {
		status = answer.StatusCode
	}
	var envelope struct {
		Success bool            `json:"success"`
		Output  json.RawMessage `json:"output"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &envelope) != nil {
		return nil, &FunctionError{Code: "INVOKE_FAILED", Message: fmt.Sprintf("invoking %s answered HTTP %d without an envelope", name, answer.StatusCode), Status: status}
	}
	if envelope.Success && status == 0 {
		if envelope.Output == nil {
			return json.RawMessage("null"), nil
		}
		return envelope.Output, nil
	}
	failure := &FunctionError{Code: "FUNCTION_ERROR", Message: fmt.Sprintf("%s failed (HTTP %d)", name, answer.StatusCode), Status: status}
	var fields struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details any    `json:"details"`
	}
	if json.Unmarshal(envelope.Error, &fields) == nil {
		if fields.Code != "" {
			failure.Code = fields.Code
		}
		if fields.Message != "" {
			failure.Message = fields.Message
		}
		failure.Details = fields.Details
	} else {
		var message string
		if json.Unmarshal(envelope.Error, &message) == nil && message != "" {
			failure.Message = message
		}
	}
	return nil, failure
}

// Handle runs fn for the request on stdin, or, in reuse mode (ALYX_REUSE=1), for each request
// line until stdin ends, then returns. The input is decoded into I (a struct, a map, or
// json.RawMessage); the output O is encoded as JSON. An error that is (or wraps) a
// *FunctionError becomes that error; any other error or a panic becomes FUNCTION_ERROR, a
// panic with its stack on stderr.
func Handle[I any, O any](fn func(input I, ctx *Context) (O, error)) {
	serve := func(request *alyxRequest) alyxResponse {
		var input I
		raw := request.Input
		if len(raw) == 0 || string(raw) == "null" {
			raw = json.RawMessage("{}")
		}
		ctx := request.context()
		if err := json.Unmarshal(raw, &input); err != nil {
			failure := &FunctionError{Code: "INVALID_INPUT", Message: "the input does not fit the function's input type: " + err.Error(), Status: 400}
			return alyxFailure(request, ctx, failure)
		}
		output, err := alyxCall(fn, input, ctx)
		if err != nil {
			return alyxFailure(request, ctx, err)
		}
		return alyxResponse{RequestID: request.RequestID, Success: true, Output: output, Logs: ctx.Log.taken()}
	}
	if os.Getenv("ALYX_REUSE") == "1" {
		alyxServeLines(serve)
	} else {
		alyxServeOnce(serve)
	}
}

type alyxRequest struct {
	RequestID string          `json:"request_id"`
	Function  string          `json:"function"`
	Input     json.RawMessage `json:"input"`
	Context   struct {
		Auth          map[string]any    `json:"auth"`
		Env           map[string]string `json:"env"`
		AlyxURL       string            `json:"alyx_url"`
		InternalToken string            `json:"internal_token"`
		Trigger       map[string]any    `json:"trigger"`
		Attempt       int               `json:"attempt"`
		Traceparent   string            `json:"traceparent"`
	} `json:"context"`
}

func (r *alyxRequest) context() *Context {
	env := r.Context.Env
	if env == nil {
		env = map[string]string{}
	}
	return &Context{
		RequestID:     r.RequestID,
		Function:      r.Function,
		Auth:          r.Context.Auth,
		Env:           env,
		Trigger:       r.Context.Trigger,
		Attempt:       r.Context.Attempt,
		Traceparent:   r.Context.Traceparent,
		Log:           &Logger{},
		alyxURL:       r.Context.AlyxURL,
		internalToken: r.Context.InternalToken,
	}
}

type alyxErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
	Status  int    `json:"status,omitempty"`
}

type alyxLogEntry struct {
	Level     string          `json:"level"`
	Message   string          `json:"message"`
	Data      json.RawMessage `json:"data,omitempty"`
	Timestamp string          `json:"timestamp"`
}

type alyxResponse struct {
	RequestID string          `json:"request_id"`
	Success   bool            `json:"success"`
	Output    json.RawMessage `json:"output,omitempty"`
	Error     *alyxErrorBody  `json:"error,omitempty"`
	Logs      []alyxLogEntry  `json:"logs"`
}

// alyxCall runs the handler, turning a panic into an error so that the process goes on serving.
func alyxCall[I any, O any](fn func(I, *Context) (O, error), input I, ctx *Context) (output json.RawMessage, err error) {
	defer func() {
		if recovered := recover(); recovered != nil {
			fmt.Fprintf(os.Stderr, "panic: %v\n\n%s", recovered, debug.Stack())
			err = fmt.Errorf("%v", recovered)
		}
	}()
	result, err := fn(input, ctx)
	if err != nil {
		return nil, err
	}
	output, err = json.Marshal(result)
	if err != nil {
		return nil, fmt.Errorf("the function's output is not JSON: %w", err)
	}
	return output, nil
}

func alyxFailure(request *alyxRequest, ctx *Context, err error) alyxResponse {
	var body alyxErrorBody
	var failure *FunctionError
	if errors.As(err, &failure) && failure != nil {
		body = failure.alyxBody()
	} else if errors.As(err, &failure) {
		// A nil *FunctionError returned as an error is not nil, and has no message to call.
		body = alyxErrorBody{Code: "FUNCTION_ERROR", Message: "the function returned a nil *FunctionError as its error"}
	} else {
		body = alyxErrorBody{Code: "FUNCTION_ERROR", Message: err.Error()}
	}
	return alyxResponse{RequestID: request.RequestID, Success: false, Error: &body, Logs: ctx.Log.taken()}
}

// alyxEncode is the response as one line; Details that do not encode fall back to an error that does.
func alyxEncode(response alyxResponse) []byte {
	line, err := json.Marshal(response)
	if err != nil {
		message := "the function's error details are not JSON: " + err.Error()
		fmt.Fprintln(os.Stderr, message)
		response.Error = &alyxErrorBody{Code: "FUNCTION_ERROR", Message: message}
		line, _ = json.Marshal(response)
	}
	return append(line, '\n')
}

func alyxParse(raw []byte) *alyxRequest {
	var request alyxRequest
	if err := json.Unmarshal(raw, &request); err != nil {
		shown := raw
		if len(shown) > 200 {
			shown = shown[:200]
		}
		fmt.Fprintf(os.Stderr, "alyx: stdin is not a request (one JSON object, as alyx writes): %v: %q\n", err, shown)
		os.Exit(1)
	}
	return &request
}

func alyxServeOnce(serve func(*alyxRequest) alyxResponse) {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "alyx: could not read the request: %v\n", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(alyxEncode(serve(alyxParse(raw)))); err != nil {
		fmt.Fprintf(os.Stderr, "alyx: could not write the response: %v\n", err)
		os.Exit(1)
	}
}

// alyxServeLines answers each request line with one response line. stdout carries nothing
// else: the function's own fmt.Println goes to stderr.
func alyxServeLines(serve func(*alyxRequest) alyxResponse) {
	out := os.Stdout
	os.Stdout = os.Stderr
	alyxWrite(out, []byte(`{"alyx_reuse":1}`+"\n"))
	// Requests can be megabytes on one line: ReadBytes has no line limit, unlike a Scanner.
	in := bufio.NewReaderSize(os.Stdin, 1<<16)
	for {
		line, err := in.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			alyxWrite(out, alyxEncode(serve(alyxParse(line))))
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "alyx: could not read requests: %v\n", err)
			os.Exit(1)
		}
	}
}

func alyxWrite(out *os.File, line []byte) {
	if _, err := out.Write(line); err != nil {
		// alyx has gone away or closed the pipe: nobody is left to answer.
		fmt.Fprintf(os.Stderr, "alyx: could not write a response: %v\n", err)
		os.Exit(1)
	}
}
