"""An OpenAI-compatible chat model over HTTPS, for tests of the production image: it streams
a fixed answer as Server-Sent Events (chunks, a usage chunk, [DONE]) as the real API does.
Usage: https_model.py CERT KEY  -> prints the port it listens on (127.0.0.1), then serves;
each request's path is appended to CERT + ".requests"."""
import http.server
import json
import ssl
import sys

CERT, KEY = sys.argv[1], sys.argv[2]
WORDS = ["Start ", "by ", "isolating ", "the ", "variable."]


class Model(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with open(CERT + ".requests", "a") as seen:
            seen.write(self.path + "\n")
        request = json.loads(body or b"{}")
        if self.path != "/v1/chat/completions" or request.get("stream") is not True:
            self.send_response(400)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        for word in WORDS:
            chunk = {"id": "c1", "object": "chat.completion.chunk", "model": request.get("model"),
                     "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        usage = {"id": "c1", "object": "chat.completion.chunk", "choices": [],
                 "usage": {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}}
        self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()
        self.close_connection = True


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Model)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
