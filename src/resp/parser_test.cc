#include "resp/parser.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "resp/protocol_errors.h"

namespace statekv::resp {
namespace {

using namespace std::string_literals;
using Args = std::vector<std::string>;

struct Parsed {
  ParseResult result;
  Args args;
};

Parsed parse(std::string_view buf, const Limits& limits = {}) {
  std::vector<std::string_view> views;
  std::vector<std::string> scratch;
  Parsed p;
  p.result = parse_request(buf, limits, views, scratch);
  p.args.assign(views.begin(), views.end());
  return p;
}

void expect_complete(std::string_view buf, const Args& args, const Limits& limits = {}) {
  const Parsed p = parse(buf, limits);
  ASSERT_EQ(p.result.status, ParseStatus::kComplete) << p.result.error;
  EXPECT_EQ(p.result.consumed, buf.size());
  EXPECT_EQ(p.args, args);
}

void expect_error(std::string_view buf, std::string_view error, const Limits& limits = {}) {
  const Parsed p = parse(buf, limits);
  ASSERT_EQ(p.result.status, ParseStatus::kError);
  EXPECT_EQ(p.result.error, error);
  EXPECT_TRUE(p.args.empty());
}

void expect_incomplete(std::string_view buf, const Limits& limits = {}) {
  const Parsed p = parse(buf, limits);
  EXPECT_EQ(p.result.status, ParseStatus::kIncomplete) << p.result.error;
  EXPECT_GT(p.result.needed, buf.size());
  EXPECT_TRUE(p.args.empty());
}

// Parses buf as a pipeline: request after request from the front.
std::vector<Args> parse_all(std::string_view buf, ParseResult* last) {
  std::vector<Args> requests;
  while (true) {
    Parsed p = parse(buf);
    *last = p.result;
    if (p.result.status != ParseStatus::kComplete) return requests;
    requests.push_back(std::move(p.args));
    buf.remove_prefix(p.result.consumed);
  }
}

TEST(MultibulkTest, ParsesArguments) {
  expect_complete("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", {"GET", "k"});
  expect_complete("*1\r\n$0\r\n\r\n", {""});
}

TEST(MultibulkTest, ConsumesOnlyTheFirstRequest) {
  const Parsed p = parse("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n");
  ASSERT_EQ(p.result.status, ParseStatus::kComplete);
  EXPECT_EQ(p.result.consumed, 14u);
  EXPECT_EQ(p.args, Args{"PING"});
}

TEST(MultibulkTest, ZeroAndNegativeCountsAreEmptyRequests) {
  expect_complete("*0\r\n", {});
  expect_complete("*-1\r\n", {});
  expect_complete("*-10\r\n", {});
}

TEST(MultibulkTest, BulksAreBinarySafe) {
  const std::string payload = "a\0b\r\nc\r"s;
  expect_complete("*2\r\n$3\r\nSET\r\n$7\r\n" + payload + "\r\n", {"SET", payload});
}

TEST(MultibulkTest, ArgumentsPointIntoTheBuffer) {
  const std::string buf = "*1\r\n$4\r\nPING\r\n";
  std::vector<std::string_view> args;
  std::vector<std::string> scratch;
  ASSERT_EQ(parse_request(buf, {}, args, scratch).status, ParseStatus::kComplete);
  ASSERT_EQ(args.size(), 1u);
  EXPECT_EQ(args[0].data(), buf.data() + 8);
  EXPECT_TRUE(scratch.empty());
}

TEST(MultibulkTest, InvalidMultibulkLength) {
  for (const char* count : {"x", "", "01", "+1", "-0", "1x", "99999999999999999999"}) {
    SCOPED_TRACE(count);
    expect_error(std::string("*") + count + "\r\n", kErrInvalidMultibulkLength);
  }
}

TEST(MultibulkTest, CountAboveTheLimitIsInvalid) {
  Limits limits;
  limits.max_multibulk_len = 3;
  expect_incomplete("*3\r\n", limits);
  expect_error("*4\r\n", kErrInvalidMultibulkLength, limits);
  // Redis 7's default cap is INT_MAX arguments.
  expect_incomplete("*20000000\r\n");
  expect_incomplete("*2147483647\r\n");
  expect_error("*2147483648\r\n", kErrInvalidMultibulkLength);
}

TEST(MultibulkTest, UnauthenticatedClientsGetRedisStricterLimits) {
  Limits limits;
  limits.unauthenticated = true;
  expect_complete("*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n", {"AUTH", "pw"}, limits);
  expect_incomplete("*10\r\n", limits);
  expect_error("*11\r\n", kErrUnauthenticatedMultibulkLength, limits);
  expect_incomplete("*1\r\n$16384\r\n", limits);
  expect_error("*1\r\n$16385\r\n", kErrUnauthenticatedBulkLength, limits);
  // The same requests are fine once authenticated.
  expect_incomplete("*11\r\n");
  expect_incomplete("*1\r\n$16385\r\n");
}

TEST(MultibulkTest, InvalidBulkLength) {
  for (const char* len : {"-1", "x", "", "01", "+4", "-0"}) {
    SCOPED_TRACE(len);
    expect_error(std::string("*1\r\n$") + len + "\r\nPING\r\n", kErrInvalidBulkLength);
  }
}

TEST(MultibulkTest, BulkAboveTheLimitIsInvalid) {
  Limits limits;
  limits.max_bulk_len = 4;
  expect_complete("*1\r\n$4\r\nPING\r\n", {"PING"}, limits);
  expect_error("*1\r\n$5\r\n", kErrInvalidBulkLength, limits);
}

TEST(MultibulkTest, ExpectedDollar) {
  // The Redis test suite's "Wrong multibulk payload header".
  expect_error("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
               "ERR Protocol error: expected '$', got 'f'");
  expect_error("*1\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'");
  // CR and LF are shown as spaces so the error stays one line.
  expect_error("*1\r\n\r\n", "ERR Protocol error: expected '$', got ' '");
}

TEST(MultibulkTest, ExpectedDollarWaitsForTheLine) {
  // Like Redis, the prefix is only checked once the whole header line is there.
  expect_incomplete("*1\r\nfoo");
}

TEST(MultibulkTest, TooBigCountStrings) {
  Limits limits;
  limits.max_inline_len = 16;
  expect_incomplete("*" + std::string(15, '1'), limits);
  expect_incomplete("*" + std::string(15, '1') + "\r", limits);
  expect_error("*" + std::string(16, '1'), kErrTooBigMultibulkCount, limits);
  expect_incomplete("*1\r\n$" + std::string(15, '1'), limits);
  expect_error("*1\r\n$" + std::string(16, '1'), kErrTooBigBulkCount, limits);
  // Redis's default window is 64KB.
  expect_error("*" + std::string(64 * 1024 + 1, '1'), kErrTooBigMultibulkCount);
  expect_error("*1\r\n$" + std::string(64 * 1024, '1'), kErrTooBigBulkCount);
}

TEST(MultibulkTest, BulkMustEndWithCrlf) {
  expect_error("*1\r\n$4\r\nPINGXY", kErrBulkNotTerminated);
  expect_error("*1\r\n$3\r\nPING\r\n", kErrBulkNotTerminated);
  expect_error("*1\r\n$4\r\nPING\n\r", kErrBulkNotTerminated);
}

TEST(MultibulkTest, NeededCoversTheWholeBulk) {
  const std::string header = "*2\r\n$3\r\nSET\r\n$1000000\r\n";
  const Parsed p = parse(header + "abc");
  ASSERT_EQ(p.result.status, ParseStatus::kIncomplete);
  EXPECT_EQ(p.result.needed, header.size() + 1000000 + 2);
}

TEST(MultibulkTest, HugeClaimedCountDoesNotAllocate) {
  // 1M claimed arguments, 4 bytes present: must be a cheap kIncomplete.
  expect_incomplete("*1048576\r\n$1\r\n");
}

TEST(InlineTest, SplitsOnWhitespace) {
  expect_complete("PING\r\n", {"PING"});
  expect_complete("SET  k \t v\r\n", {"SET", "k", "v"});
  expect_complete("GET k\n", {"GET", "k"});
  expect_complete("  GET k  \r\n", {"GET", "k"});
}

TEST(InlineTest, EmptyLinesAreEmptyRequests) {
  expect_complete("\r\n", {});
  expect_complete("\n", {});
  expect_complete("   \t \r\n", {});
}

TEST(InlineTest, OnlyOneCarriageReturnIsPartOfTheLineEnding) {
  // The line is "GET k\r"; a bare CR separates tokens.
  expect_complete("GET k\r\r\n", {"GET", "k"});
  expect_complete("a\rb\n", {"a", "b"});
}

TEST(InlineTest, VerticalTabAndFormFeedSeparateOnlyBetweenTokens) {
  // sdssplitargs skips every isspace() byte between tokens but ends an unquoted
  // token only at space, tab, CR or LF.
  expect_complete("a\vb\r\n", {"a\vb"});
  expect_complete("a \v\fb\r\n", {"a", "b"});
}

TEST(InlineTest, DoubleQuotes) {
  expect_complete("SET k \"hello world\"\r\n", {"SET", "k", "hello world"});
  expect_complete("\"\"\r\n", {""});
  expect_complete("\"a\\nb\\rc\\td\\be\\af\"\n", {"a\nb\rc\td\be\af"});
  expect_complete("\"\\\\ \\\" \\z\"\n", {"\\ \" z"});
  expect_complete("\"\\x41\\x4a\\x4A\\x00z\"\n", {std::string("AJJ\0z", 5)});
  // \x needs two hex digits; otherwise it is an escaped 'x'.
  expect_complete("\"\\x4g\"\n", {"x4g"});
  // Quotes may start in the middle of a token.
  expect_complete("a\"b c\"\n", {"ab c"});
}

TEST(InlineTest, SingleQuotes) {
  expect_complete("'hello world'\n", {"hello world"});
  expect_complete("'it\\'s'\n", {"it's"});
  // Only \' is an escape inside single quotes.
  expect_complete("'a\\nb\\\\c'\n", {"a\\nb\\\\c"});
  // ...so a backslash right before the closing quote escapes it.
  expect_error("'a\\'\n", kErrUnbalancedQuotes);
  expect_complete("'\"'\n", {"\""});
}

TEST(InlineTest, UnbalancedQuotes) {
  for (const char* line :
       {"\"abc", "'abc", "\"abc\"def", "'abc'def", "\"a\"\"b\"", "\"abc\\\"", "SET k \"v"}) {
    SCOPED_TRACE(line);
    expect_error(std::string(line) + "\r\n", kErrUnbalancedQuotes);
  }
  // A closing quote may be followed by any isspace() byte.
  expect_complete("\"a\"\vb\n", {"a", "b"});
}

TEST(InlineTest, QuotedArgumentsLiveInScratch) {
  const std::string buf = "SET \"k\" v\r\n";
  std::vector<std::string_view> args;
  std::vector<std::string> scratch;
  ASSERT_EQ(parse_request(buf, {}, args, scratch).status, ParseStatus::kComplete);
  ASSERT_EQ(args.size(), 3u);
  EXPECT_EQ(args[0].data(), buf.data());
  ASSERT_EQ(scratch.size(), 1u);
  EXPECT_EQ(args[1].data(), scratch[0].data());
  EXPECT_EQ(args[2].data(), buf.data() + 8);
}

TEST(InlineTest, ManyQuotedArgumentsSurviveScratchGrowth) {
  // Short strings live inside std::string (SSO): views taken before the vector
  // reallocates would dangle.
  std::string line;
  Args expected;
  for (int i = 0; i < 100; ++i) {
    line += "\"a" + std::to_string(i) + "\" ";
    expected.push_back("a" + std::to_string(i));
  }
  expect_complete(line + "\n", expected);
}

TEST(InlineTest, NulIsData) {
  expect_complete(std::string("a\0b c\n", 6), {std::string("a\0b", 3), "c"});
}

TEST(InlineTest, TooBigInlineRequest) {
  Limits limits;
  limits.max_inline_len = 8;
  expect_incomplete("12345678", limits);
  expect_complete("1234567\r\n", {"1234567"}, limits);
  expect_complete("12345678\n", {"12345678"}, limits);
  expect_error("123456789", kErrTooBigInline, limits);
  // The verdict does not depend on how much arrived at once.
  expect_error("123456789\r\n", kErrTooBigInline, limits);
  expect_error(std::string(64 * 1024 + 1, 'a'), kErrTooBigInline);
}

TEST(ParseRequestTest, UnlimitedLineLengthsDoNotWrap) {
  Limits limits;
  limits.max_inline_len = SIZE_MAX;
  expect_complete("PING\r\n", {"PING"}, limits);
  expect_complete("*1\r\n$4\r\nPING\r\n", {"PING"}, limits);
  expect_incomplete("PING", limits);
}

TEST(ParseRequestTest, EmptyBufferIsIncomplete) {
  const Parsed p = parse("");
  EXPECT_EQ(p.result.status, ParseStatus::kIncomplete);
  EXPECT_EQ(p.result.needed, 1u);
}

TEST(ParseRequestTest, EveryPrefixIsIncomplete) {
  const std::string request = "*3\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n$5\r\nva\r\nl\r\n"s;
  for (size_t i = 0; i < request.size(); ++i) {
    SCOPED_TRACE(i);
    const Parsed p = parse(std::string_view(request).substr(0, i));
    ASSERT_EQ(p.result.status, ParseStatus::kIncomplete);
    EXPECT_GT(p.result.needed, i);
    EXPECT_LE(p.result.needed, request.size());
  }
}

// Parses whatever complete requests buffer holds, erasing them as a server does.
void drain(std::string& buffer, std::vector<Args>& out) {
  while (true) {
    Parsed p = parse(buffer);
    ASSERT_NE(p.result.status, ParseStatus::kError) << p.result.error;
    if (p.result.status == ParseStatus::kIncomplete) return;
    out.push_back(std::move(p.args));
    buffer.erase(0, p.result.consumed);
  }
}

const std::string kPipeline = "*2\r\n$3\r\nGET\r\n$2\r\nk\0\r\n"s + "PING\r\n" + "\r\n" +
                              "SET 'a b' \"c\\x41\"\n" + "*0\r\n" +
                              "*3\r\n$3\r\nSET\r\n$2\r\n\r\n\r\n$0\r\n\r\n" + "*-1\r\n";

TEST(ParseRequestTest, PipelineParsesInOrder) {
  ParseResult last;
  const std::vector<Args> all = parse_all(kPipeline, &last);
  EXPECT_EQ(last.status, ParseStatus::kIncomplete);
  const std::vector<Args> expected = {{"GET", "k\0"s},     {"PING"}, {}, {"SET", "a b", "cA"}, {},
                                      {"SET", "\r\n", ""}, {}};
  EXPECT_EQ(all, expected);
}

TEST(ParseRequestTest, EverySplitOfAPipelineParsesIdentically) {
  ParseResult last;
  const std::vector<Args> whole = parse_all(kPipeline, &last);
  for (size_t split = 0; split <= kPipeline.size(); ++split) {
    SCOPED_TRACE(split);
    std::string buffer;
    std::vector<Args> got;
    buffer.append(kPipeline, 0, split);
    drain(buffer, got);
    buffer.append(kPipeline, split);
    drain(buffer, got);
    EXPECT_EQ(got, whole);
    EXPECT_TRUE(buffer.empty());
  }
}

TEST(ParseRequestTest, ByteByByteParsesIdentically) {
  ParseResult last;
  const std::vector<Args> whole = parse_all(kPipeline, &last);
  std::string buffer;
  std::vector<Args> got;
  for (char c : kPipeline) {
    buffer.push_back(c);
    drain(buffer, got);
  }
  EXPECT_EQ(got, whole);
  EXPECT_TRUE(buffer.empty());
}

}  // namespace
}  // namespace statekv::resp
