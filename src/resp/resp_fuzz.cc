// libFuzzer target for the RESP layer. Beyond "no crash, no sanitizer report" it
// checks the contracts callers rely on:
//  - consumed <= size; kIncomplete asks for more bytes than it was given;
//  - every argument points into the input or into scratch;
//  - a complete parse does not depend on the bytes after it (the prefix it consumed
//    parses the same on its own), and a prefix never completes where the whole
//    input would not;
//  - arguments re-encoded by Writer as a multibulk parse back to the same arguments.
// Built with clang (see CMakeLists.txt); run: resp_fuzz CORPUS_DIR src/resp/fuzz_corpus
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "resp/parser.h"
#include "resp/value.h"
#include "resp/writer.h"

namespace {

using statekv::resp::Limits;
using statekv::resp::parse_request;
using statekv::resp::parse_value;
using statekv::resp::ParseResult;
using statekv::resp::ParseStatus;
using statekv::resp::Value;
using statekv::resp::Writer;

void check(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "resp_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

struct Request {
  ParseResult result;
  std::vector<std::string> args;
};

Request request(std::string_view buf, const Limits& limits) {
  std::vector<std::string_view> args;
  std::vector<std::string> scratch;
  Request r;
  r.result = parse_request(buf, limits, args, scratch);
  check(r.result.consumed <= buf.size(), "request: consumed <= size");
  switch (r.result.status) {
    case ParseStatus::kComplete:
      check(r.result.consumed > 0, "request: a complete request consumes bytes");
      break;
    case ParseStatus::kIncomplete:
      check(r.result.needed > buf.size(), "request: needed > size");
      check(args.empty(), "request: no args unless complete");
      break;
    case ParseStatus::kError:
      check(!r.result.error.empty(), "request: an error has a text");
      check(r.result.error.find_first_of("\r\n") == std::string::npos,
            "request: the error text is one line");
      check(args.empty(), "request: no args unless complete");
      break;
  }
  for (std::string_view a : args) {
    bool in_scratch = false;
    for (const std::string& s : scratch) in_scratch = in_scratch || inside(a, s);
    check(inside(a, buf) || in_scratch, "request: args point into the input or scratch");
    r.args.emplace_back(a);
  }
  return r;
}

void fuzz_request(std::string_view buf, const Limits& limits) {
  const Request whole = request(buf, limits);
  // The bytes after a complete request must not matter.
  if (whole.result.status == ParseStatus::kComplete) {
    const Request alone = request(buf.substr(0, whole.result.consumed), limits);
    check(alone.result.status == ParseStatus::kComplete &&
              alone.result.consumed == whole.result.consumed && alone.args == whole.args,
          "request: the consumed prefix parses the same on its own");
    // Every argument, re-encoded as a multibulk, reads back unchanged.
    std::string encoded;
    Writer w(&encoded);
    w.array(whole.args.size());
    for (const std::string& a : whole.args) w.bulk(a);
    // Default limits: an inline line within the small limits can still hold more
    // arguments than the small multibulk limit allows.
    const Request again = request(encoded, Limits{});
    if (!whole.args.empty()) {
      check(again.result.status == ParseStatus::kComplete && again.args == whole.args &&
                again.result.consumed == encoded.size(),
            "request: writer output parses back to the same args");
    }
  }
  // A prefix may only complete where the whole input completes, identically.
  const Request half = request(buf.substr(0, buf.size() / 2), limits);
  if (half.result.status == ParseStatus::kComplete) {
    check(whole.result.status == ParseStatus::kComplete &&
              whole.result.consumed == half.result.consumed && whole.args == half.args,
          "request: a complete prefix agrees with the whole");
  }
  if (whole.result.status == ParseStatus::kIncomplete) {
    check(half.result.status == ParseStatus::kIncomplete,
          "request: a prefix of an incomplete input is incomplete");
  }
}

void fuzz_value(std::string_view buf, const Limits& limits) {
  Value v;
  const ParseResult r = parse_value(buf, v, limits);
  check(r.consumed <= buf.size(), "value: consumed <= size");
  if (r.status == ParseStatus::kIncomplete) check(r.needed > buf.size(), "value: needed > size");
  if (r.status == ParseStatus::kComplete) {
    Value alone;
    const ParseResult again = parse_value(buf.substr(0, r.consumed), alone, limits);
    check(again.status == ParseStatus::kComplete && again.consumed == r.consumed,
          "value: the consumed prefix parses the same on its own");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view buf(reinterpret_cast<const char*>(data), size);
  // Redis's defaults, and tiny limits so the fuzzer reaches every limit check.
  Limits small;
  small.max_bulk_len = 16;
  small.max_multibulk_len = 4;
  small.max_inline_len = 16;
  for (const Limits& limits : {Limits{}, small}) {
    fuzz_request(buf, limits);
    fuzz_value(buf, limits);
  }
  return 0;
}
