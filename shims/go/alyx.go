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
	"net"
	"net/textproto"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
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
	target, err := url.Parse(strings.TrimRight(c.alyxURL, "/") + "/api/functions/" + url.PathEscape(name))
	if err != nil || target.Scheme != "http" || target.Host == "" || target.User != nil || target.RawQuery != "" || target.Fragment != "" {
		return nil, NewFunctionError("INVOKE_FAILED", fmt.Sprintf("could not invoke %s: alyx_url %q is not http://host:port (the Go helper speaks plain HTTP only)", name, c.alyxURL))
	}
	if !alyxHeaderValue(c.internalToken) || !alyxHeaderValue(c.Traceparent) {
		return nil, NewFunctionError("INVOKE_FAILED", fmt.Sprintf("could not invoke %s: the internal token or traceparent holds a control character", name))
	}
	// No deadline: alyx's timeout for this invocation ends the process, as it would any other wait.
	conn, answer, err := alyxSend(target, body, c.internalToken, c.Traceparent)
	if err != nil {
		return nil, NewFunctionError("INVOKE_FAILED", fmt.Sprintf("could not reach alyx to invoke %s: %v", name, err))
	}
	defer conn.Close()
	raw, err := answer.body()
	if err != nil {
		return nil, NewFunctionError("INVOKE_FAILED", fmt.Sprintf("could not read the answer of %s: %v", name, err))
	}
	status := 0
	if answer.status >= 400 && answer.status <= 599 {
		status = answer.status
	}
	var envelope struct {
		Success bool            `json:"success"`
		Output  json.RawMessage `json:"output"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &envelope) != nil {
		return nil, &FunctionError{Code: "INVOKE_FAILED", Message: fmt.Sprintf("invoking %s answered HTTP %d without an envelope", name, answer.status), Status: status}
	}
	if envelope.Success && status == 0 {
		if envelope.Output == nil {
			return json.RawMessage("null"), nil
		}
		return envelope.Output, nil
	}
	failure := &FunctionError{Code: "FUNCTION_ERROR", Message: fmt.Sprintf("%s failed (HTTP %d)", name, answer.status), Status: status}
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

// The helper speaks just the HTTP/1.1 that a POST to alyx's own server needs, over one
// connection per call: importing net/http would add the package initialisation of its TLS
// stack to the start of every Go function, and most never call Invoke.

// alyxAnswer is a response whose status line and headers have been read.
type alyxAnswer struct {
	status int
	header textproto.MIMEHeader
	text   *textproto.Reader
}

// alyxSend POSTs body as JSON to target and reads the answer up to its body.
func alyxSend(target *url.URL, body []byte, token, traceparent string) (net.Conn, *alyxAnswer, error) {
	address := target.Host
	if target.Port() == "" {
		address = net.JoinHostPort(target.Hostname(), "80")
	}
	conn, err := net.Dial("tcp", address)
	if err != nil {
		return nil, nil, err
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nAuthorization: Bearer %s\r\n",
		target.EscapedPath(), target.Host, len(body), token)
	if traceparent != "" {
		fmt.Fprintf(&head, "traceparent: %s\r\n", traceparent)
	}
	head.WriteString("Connection: close\r\n\r\n")
	head.Write(body)
	// A server that refuses the request early (413 for a body over its limit) may answer and
	// close before it has read the whole body: the write then fails, but the answer is there.
	_, writeErr := conn.Write(head.Bytes())
	answer := &alyxAnswer{text: textproto.NewReader(bufio.NewReader(conn))}
	// Interim answers (1xx) may come before the real one.
	for answer.status < 200 {
		if err := answer.readHead(); err != nil {
			conn.Close()
			if writeErr != nil {
				return nil, nil, writeErr
			}
			return nil, nil, err
		}
	}
	return conn, answer, nil
}

func (a *alyxAnswer) readHead() error {
	line, err := a.text.ReadLine()
	if err != nil {
		return fmt.Errorf("no status line: %w", err)
	}
	version, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(version, "HTTP/1.") || len(code) != 3 || err != nil || status < 100 {
		return fmt.Errorf("not an HTTP/1.x status line: %q", line)
	}
	header, err := a.text.ReadMIMEHeader()
	if err != nil {
		return fmt.Errorf("malformed headers: %w", err)
	}
	a.status, a.header = status, header
	return nil
}

// body reads the body as the headers frame it: chunked, by Content-Length, or to the end of
// the connection, which the request asked the server to close.
func (a *alyxAnswer) body() ([]byte, error) {
	if a.status == 204 || a.status == 304 {
		return nil, nil
	}
	if coding := a.header.Get("Transfer-Encoding"); coding != "" {
		if !strings.EqualFold(strings.TrimSpace(coding), "chunked") {
			return nil, fmt.Errorf("unsupported Transfer-Encoding %q", coding)
		}
		return a.chunked()
	}
	var body bytes.Buffer
	if lengths := a.header.Values("Content-Length"); len(lengths) > 0 {
		for _, other := range lengths[1:] {
			if other != lengths[0] {
				return nil, fmt.Errorf("conflicting Content-Length headers %q", lengths)
			}
		}
		length, err := strconv.ParseInt(strings.TrimSpace(lengths[0]), 10, 63)
		if err != nil || length < 0 {
			return nil, fmt.Errorf("invalid Content-Length %q", lengths[0])
		}
		// CopyN grows the buffer as bytes arrive, so a lying length cannot allocate up front.
		if _, err := io.CopyN(&body, a.text.R, length); err != nil {
			return nil, alyxShort(err)
		}
		return body.Bytes(), nil
	}
	_, err := io.Copy(&body, a.text.R)
	return body.Bytes(), err
}

func (a *alyxAnswer) chunked() ([]byte, error) {
	var body bytes.Buffer
	for {
		line, err := a.text.ReadLine()
		if err != nil {
			return nil, alyxShort(err)
		}
		sizeText, _, _ := strings.Cut(line, ";")
		size, err := strconv.ParseInt(strings.TrimSpace(sizeText), 16, 63)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("invalid chunk size line %q", line)
		}
		if size == 0 {
			// Trailers, if any, end with an empty line like the headers.
			if _, err := a.text.ReadMIMEHeader(); err != nil {
				return nil, fmt.Errorf("malformed trailers: %w", alyxShort(err))
			}
			return body.Bytes(), nil
		}
		if _, err := io.CopyN(&body, a.text.R, size); err != nil {
			return nil, alyxShort(err)
		}
		if end, err := a.text.ReadLine(); err != nil {
			return nil, alyxShort(err)
		} else if end != "" {
			return nil, fmt.Errorf("a chunk of %d bytes is followed by %q, not CRLF", size, end)
		}
	}
}

// alyxShort says that an answer ended early, which a bare io.EOF would not.
func alyxShort(err error) error {
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// alyxHeaderValue reports whether value can be a header value as is: a CR or LF would end the
// header early and let the rest pass for headers of its own.
func alyxHeaderValue(value string) bool {
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
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
