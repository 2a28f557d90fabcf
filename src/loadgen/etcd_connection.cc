#include "loadgen/etcd_connection.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "loadgen/socket.h"

namespace statekv::loadgen {
namespace {

constexpr size_t kMaxHeadBytes = 64 * 1024;
constexpr size_t kMaxBodyBytes = 64 * 1024 * 1024;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether a comma-separated header value (Connection, Transfer-Encoding) lists `token`.
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (lower(trim(value.substr(0, comma))) == token) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

// ---- endpoints and base64 ----

Result<HostPort> parse_endpoint(std::string_view endpoint) {
  const std::string original(endpoint);
  if (endpoint.starts_with("https://")) {
    return Status::InvalidArgument("endpoint " + original + ": https is not supported (no TLS)");
  }
  if (endpoint.starts_with("http://")) endpoint.remove_prefix(7);
  if (endpoint.ends_with('/')) endpoint.remove_suffix(1);
  HostPort out;
  std::string_view port;
  if (endpoint.starts_with('[')) {  // [v6-address]:port
    const size_t close = endpoint.find(']');
    if (close == std::string_view::npos || close + 1 >= endpoint.size() ||
        endpoint[close + 1] != ':') {
      return Status::InvalidArgument("endpoint " + original + ": expected [address]:port");
    }
    out.host = std::string(endpoint.substr(1, close - 1));
    port = endpoint.substr(close + 2);
  } else {
    const size_t colon = endpoint.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Status::InvalidArgument("endpoint " + original + ": expected host:port");
    }
    out.host = std::string(endpoint.substr(0, colon));
    port = endpoint.substr(colon + 1);
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
    return Status::InvalidArgument("endpoint " + original + ": bad port \"" + std::string(port) +
                                   "\"");
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // + the NUL EVP writes
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// ---- HTTP/1.1 response parsing ----

void HttpResponseParser::reset() {
  *this = HttpResponseParser();
}

HttpResponseParser::State HttpResponseParser::fail(std::string message) {
  error_ = std::move(message);
  return State::kError;
}

std::optional<std::string> HttpResponseParser::header(std::string_view name) const {
  const std::string key = lower(name);
  std::optional<std::string> found;
  for (const auto& [k, v] : headers_) {
    if (k == key) found = v;
  }
  return found;
}

HttpResponseParser::State HttpResponseParser::feed(std::string_view bytes) {
  if (!error_.empty()) return State::kError;
  if (phase_ == Phase::kDone) return fail("bytes after the end of the response");
  buffer_.append(bytes);
  return advance();
}

HttpResponseParser::State HttpResponseParser::feed_eof() {
  if (!error_.empty()) return State::kError;
  if (phase_ == Phase::kBodyToEof) {
    body_ += buffer_;
    buffer_.clear();
    phase_ = Phase::kDone;
    return State::kDone;
  }
  if (phase_ == Phase::kDone) return State::kDone;
  return fail(phase_ == Phase::kHead && buffer_.empty()
                  ? "connection closed before a response"
                  : "connection closed in the middle of a response");
}

HttpResponseParser::State HttpResponseParser::parse_head() {
  const size_t end = buffer_.find("\r\n\r\n");
  if (end == std::string::npos) {
    return buffer_.size() > kMaxHeadBytes ? fail("response headers over 64 KiB") : State::kNeedMore;
  }
  std::string_view head(buffer_.data(), end);
  // Status line: HTTP/1.x SP 3DIGIT SP reason
  const size_t line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ') {
    return fail("bad status line \"" + std::string(status_line.substr(0, 80)) + "\"");
  }
  const bool http10 = status_line[7] == '0';
  std::string_view code = status_line.substr(9, 3);
  auto [ptr, ec] = std::from_chars(code.data(), code.data() + 3, status_code_);
  if (ec != std::errc() || ptr != code.data() + 3 || status_code_ < 100 ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    return fail("bad status line \"" + std::string(status_line.substr(0, 80)) + "\"");
  }
  if (status_code_ < 200) return fail("unexpected interim response " + std::string(code));

  std::string_view rest =
      line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return fail("bad header line \"" + std::string(line.substr(0, 80)) + "\"");
    }
    headers_.emplace_back(lower(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  }
  buffer_.erase(0, end + 4);

  const auto connection = header("connection");
  keep_alive_ = http10 ? (connection && has_token(*connection, "keep-alive"))
                       : !(connection && has_token(*connection, "close"));
  if (status_code_ == 204 || status_code_ == 304) {
    phase_ = Phase::kDone;
    return State::kDone;
  }
  if (const auto te = header("transfer-encoding")) {
    if (!has_token(*te, "chunked")) return fail("unsupported transfer-encoding \"" + *te + "\"");
    phase_ = Phase::kChunkSize;
    return State::kNeedMore;
  }
  if (const auto length = header("content-length")) {
    size_t n = 0;
    auto [p, e] = std::from_chars(length->data(), length->data() + length->size(), n);
    if (e != std::errc() || p != length->data() + length->size() || length->empty()) {
      return fail("bad content-length \"" + *length + "\"");
    }
    if (n > kMaxBodyBytes) return fail("response body over 64 MiB");
    remaining_ = n;
    phase_ = Phase::kBodyLength;
    return State::kNeedMore;
  }
  // Neither framing: the body runs to the end of the connection.
  keep_alive_ = false;
  phase_ = Phase::kBodyToEof;
  return State::kNeedMore;
}

HttpResponseParser::State HttpResponseParser::advance() {
  while (true) {
    switch (phase_) {
      case Phase::kHead: {
        if (parse_head() == State::kError) return State::kError;
        if (phase_ == Phase::kHead) return State::kNeedMore;
        break;
      }
      case Phase::kBodyLength: {
        const size_t take = std::min(remaining_, buffer_.size());
        body_.append(buffer_, 0, take);
        buffer_.erase(0, take);
        remaining_ -= take;
        if (remaining_ > 0) return State::kNeedMore;
        phase_ = Phase::kDone;
        break;
      }
      case Phase::kChunkSize: {
        const size_t eol = buffer_.find("\r\n");
        if (eol == std::string::npos) {
          return buffer_.size() > 1024 ? fail("chunk size line too long") : State::kNeedMore;
        }
        std::string_view line(buffer_.data(), eol);
        line = trim(line.substr(0, line.find(';')));  // drop chunk extensions
        size_t size = 0;
        auto [p, e] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
        if (line.empty() || e != std::errc() || p != line.data() + line.size()) {
          return fail("bad chunk size \"" + std::string(line.substr(0, 40)) + "\"");
        }
        if (size > kMaxBodyBytes - body_.size()) return fail("response body over 64 MiB");
        buffer_.erase(0, eol + 2);
        remaining_ = size;
        phase_ = size == 0 ? Phase::kTrailers : Phase::kChunkData;
        break;
      }
      case Phase::kChunkData: {
        if (buffer_.size() < remaining_ + 2) {
          // Move what is here into the body now, so a large chunk is not copied twice.
          const size_t take = std::min(remaining_, buffer_.size());
          body_.append(buffer_, 0, take);
          buffer_.erase(0, take);
          remaining_ -= take;
          return State::kNeedMore;
        }
        body_.append(buffer_, 0, remaining_);
        if (buffer_.compare(remaining_, 2, "\r\n") != 0) return fail("chunk not followed by CRLF");
        buffer_.erase(0, remaining_ + 2);
        remaining_ = 0;
        phase_ = Phase::kChunkSize;
        break;
      }
      case Phase::kTrailers: {
        const size_t eol = buffer_.find("\r\n");
        if (eol == std::string::npos) {
          return buffer_.size() > kMaxHeadBytes ? fail("trailers over 64 KiB") : State::kNeedMore;
        }
        std::string_view line(buffer_.data(), eol);
        if (!line.empty()) {
          const size_t colon = line.find(':');
          if (colon == std::string_view::npos || colon == 0) return fail("bad trailer line");
          headers_.emplace_back(lower(line.substr(0, colon)),
                                std::string(trim(line.substr(colon + 1))));
        }
        buffer_.erase(0, eol + 2);
        if (line.empty()) phase_ = Phase::kDone;
        break;
      }
      case Phase::kBodyToEof:
        if (body_.size() + buffer_.size() > kMaxBodyBytes) return fail("response body over 64 MiB");
        body_ += buffer_;
        buffer_.clear();
        return State::kNeedMore;
      case Phase::kDone:
        return buffer_.empty() ? State::kDone : fail("bytes after the end of the response");
    }
  }
}

// ---- the connection ----

Result<std::unique_ptr<EtcdConnection>> EtcdConnection::connect(const HostPort& endpoint,
                                                                const EtcdOptions& options) {
  std::unique_ptr<EtcdConnection> conn(new EtcdConnection(endpoint, options));
  if (Status s = conn->open(); !s.ok()) return s;
  return conn;
}

EtcdConnection::~EtcdConnection() {
  close_socket();
}

std::string EtcdConnection::describe() const {
  return fmt::format("etcd {}:{}", endpoint_.host, endpoint_.port);
}

void EtcdConnection::close_socket() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status EtcdConnection::open() {
  close_socket();
  auto fd = connect_tcp(endpoint_, options_.connect_timeout, options_.io_timeout, describe());
  if (!fd.ok()) return fd.status();
  fd_ = *fd;
  ++connects_;
  return Status::OK();
}

Status EtcdConnection::send_all(std::string_view bytes) {
  return loadgen::send_all(fd_, bytes, describe());
}

Status EtcdConnection::read_response() {
  parser_.reset();
  char buf[16 * 1024];
  while (true) {
    auto n = recv_some(fd_, buf, sizeof(buf), options_.io_timeout, describe());
    if (!n.ok()) return n.status();
    const HttpResponseParser::State state =
        *n > 0 ? parser_.feed(std::string_view(buf, *n)) : parser_.feed_eof();
    if (state == HttpResponseParser::State::kDone) return Status::OK();
    if (state == HttpResponseParser::State::kError) {
      return Status::IOError(describe() + ": bad HTTP response: " + parser_.error());
    }
  }
}

Status EtcdConnection::put(std::string_view key, std::string_view value) {
  if (fd_ < 0) {
    if (Status s = open(); !s.ok()) return s;
  }
  // Base64 has no character that needs escaping in JSON.
  const std::string body =
      "{\"key\":\"" + base64_encode(key) + "\",\"value\":\"" + base64_encode(value) + "\"}";
  request_.clear();
  request_ += "POST /v3/kv/put HTTP/1.1\r\nHost: ";
  if (endpoint_.host.find(':') != std::string::npos) {
    request_ += "[" + endpoint_.host + "]";
  } else {
    request_ += endpoint_.host;
  }
  request_ += fmt::format(":{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                          endpoint_.port, body.size());
  request_ += body;
  ++requests_;

  Status io = send_all(request_);
  if (io.ok()) io = read_response();
  if (!io.ok()) {
    close_socket();
    return io;
  }
  if (!parser_.keep_alive()) close_socket();

  const auto json = nlohmann::json::parse(parser_.body(), nullptr, /*allow_exceptions=*/false);
  const int code = parser_.status_code();
  if (code != 200) {
    // The gateway's error body: {"error": "...", "message": "...", "code": <gRPC code>}.
    std::string detail = parser_.body().substr(0, 200);
    if (json.is_object() && json.contains("message") && json["message"].is_string()) {
      detail = json["message"].get<std::string>();
    }
    const std::string msg = fmt::format("{}: HTTP {}: {}", describe(), code, detail);
    if (code == 408 || code == 504) return Status::Timeout(msg);
    if (code >= 400 && code < 500) return Status::InvalidArgument(msg);
    return Status::Unavailable(msg);
  }
  if (!json.is_object() || !json.contains("header") || !json["header"].is_object()) {
    return Status::Corruption(describe() + ": HTTP 200 without an etcd response header: " +
                              parser_.body().substr(0, 200));
  }
  return Status::OK();
}

Result<ConnectionFactory> make_etcd_connection_factory(const std::vector<std::string>& endpoints,
                                                       const EtcdOptions& options) {
  if (endpoints.empty()) return Status::InvalidArgument("no etcd endpoints given");
  std::vector<HostPort> parsed;
  for (const auto& e : endpoints) {
    auto hp = parse_endpoint(e);
    if (!hp.ok()) return hp.status();
    parsed.push_back(std::move(*hp));
  }
  return ConnectionFactory(
      [parsed = std::move(parsed), options](size_t client) -> Result<std::unique_ptr<Connection>> {
        auto conn = EtcdConnection::connect(parsed[client % parsed.size()], options);
        if (!conn.ok()) return conn.status();
        return std::unique_ptr<Connection>(std::move(*conn));
      });
}

}  // namespace statekv::loadgen
