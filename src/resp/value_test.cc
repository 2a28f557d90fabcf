#include "resp/value.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "resp/writer.h"

namespace statekv::resp {
namespace {

using namespace std::string_literals;
using Type = Value::Type;

Value parse_ok(std::string_view buf) {
  Value v;
  const ParseResult r = parse_value(buf, v);
  EXPECT_EQ(r.status, ParseStatus::kComplete) << r.error;
  EXPECT_EQ(r.consumed, buf.size());
  return v;
}

std::string parse_error(std::string_view buf, const Limits& limits = {}) {
  Value v;
  const ParseResult r = parse_value(buf, v, limits);
  EXPECT_EQ(r.status, ParseStatus::kError);
  return r.error;
}

TEST(ParseValueTest, Scalars) {
  Value v = parse_ok("+OK\r\n");
  EXPECT_EQ(v.type, Type::kSimple);
  EXPECT_EQ(v.str, "OK");

  v = parse_ok("-ERR bad\r\n");
  EXPECT_EQ(v.type, Type::kError);
  EXPECT_EQ(v.str, "ERR bad");

  v = parse_ok(":-9223372036854775808\r\n");
  EXPECT_EQ(v.type, Type::kInteger);
  EXPECT_EQ(v.integer, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(parse_ok(":+7\r\n").integer, 7);

  v = parse_ok("$5\r\na\0\r\nb\r\n"s);
  EXPECT_EQ(v.type, Type::kBulk);
  EXPECT_EQ(v.str, "a\0\r\nb"s);

  EXPECT_EQ(parse_ok("$-1\r\n").type, Type::kNull);
  EXPECT_EQ(parse_ok("*-1\r\n").type, Type::kNull);
  EXPECT_EQ(parse_ok("_\r\n").type, Type::kNull);
}

TEST(ParseValueTest, Resp3Scalars) {
  Value v = parse_ok(",1.5\r\n");
  EXPECT_EQ(v.type, Type::kDouble);
  EXPECT_EQ(v.str, "1.5");
  for (const char* d : {",inf\r\n", ",-inf\r\n", ",nan\r\n", ",1e+20\r\n", ",-0\r\n", ",.5\r\n"}) {
    EXPECT_EQ(parse_ok(d).type, Type::kDouble) << d;
  }

  v = parse_ok("#t\r\n");
  EXPECT_EQ(v.type, Type::kBoolean);
  EXPECT_EQ(v.integer, 1);
  EXPECT_EQ(parse_ok("#f\r\n").integer, 0);

  v = parse_ok("!21\r\nSYNTAX invalid syntax\r\n");
  EXPECT_EQ(v.type, Type::kError);
  EXPECT_EQ(v.str, "SYNTAX invalid syntax");

  v = parse_ok("=15\r\ntxt:Some string\r\n");
  EXPECT_EQ(v.type, Type::kVerbatim);
  EXPECT_EQ(v.str, "Some string");

  v = parse_ok("(3492890328409238509324850943850943825024385\r\n");
  EXPECT_EQ(v.type, Type::kBigNumber);
  EXPECT_EQ(v.str, "3492890328409238509324850943850943825024385");
  EXPECT_EQ(parse_ok("(-1\r\n").str, "-1");
}

TEST(ParseValueTest, Aggregates) {
  Value v = parse_ok("*3\r\n:1\r\n$1\r\na\r\n*1\r\n_\r\n");
  ASSERT_EQ(v.type, Type::kArray);
  ASSERT_EQ(v.elements.size(), 3u);
  EXPECT_EQ(v.elements[0].integer, 1);
  EXPECT_EQ(v.elements[1].str, "a");
  ASSERT_EQ(v.elements[2].elements.size(), 1u);
  EXPECT_EQ(v.elements[2].elements[0].type, Type::kNull);

  v = parse_ok("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n");
  ASSERT_EQ(v.type, Type::kMap);
  ASSERT_EQ(v.elements.size(), 4u);
  EXPECT_EQ(v.elements[2].str, "b");
  EXPECT_EQ(v.elements[3].integer, 2);

  v = parse_ok("~2\r\n+a\r\n+b\r\n");
  EXPECT_EQ(v.type, Type::kSet);
  EXPECT_EQ(v.elements.size(), 2u);

  v = parse_ok(">2\r\n+message\r\n+hi\r\n");
  EXPECT_EQ(v.type, Type::kPush);
  EXPECT_EQ(v.elements.size(), 2u);

  EXPECT_TRUE(parse_ok("*0\r\n").elements.empty());
}

TEST(ParseValueTest, AttributesAreSkipped) {
  Value v = parse_ok("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n");
  ASSERT_EQ(v.type, Type::kArray);
  ASSERT_EQ(v.elements.size(), 1u);
  EXPECT_EQ(v.elements[0].integer, 2);
  // Chains of attributes cost no stack.
  std::string chained;
  for (int i = 0; i < 10000; ++i) chained += "|0\r\n";
  EXPECT_EQ(parse_ok(chained + ":5\r\n").integer, 5);
}

TEST(ParseValueTest, ConsumesOneValue) {
  Value v;
  const ParseResult r = parse_value("+a\r\n+b\r\n", v);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.consumed, 4u);
  EXPECT_EQ(v.str, "a");
}

TEST(ParseValueTest, EveryPrefixIsIncomplete) {
  const std::string buf =
      "*8\r\n+s\r\n:1\r\n$3\r\na\r\n\r\n%1\r\n,1.5\r\n#t\r\n~1\r\n(12\r\n=5\r\ntxt:x\r\n"
      "|1\r\n+k\r\n+v\r\n!1\r\nE\r\n_\r\n";
  parse_ok(buf);
  for (size_t i = 0; i < buf.size(); ++i) {
    SCOPED_TRACE(i);
    Value v;
    const ParseResult r = parse_value(std::string_view(buf).substr(0, i), v);
    ASSERT_EQ(r.status, ParseStatus::kIncomplete) << r.error;
    EXPECT_GT(r.needed, i);
    EXPECT_LE(r.needed, buf.size());
  }
}

TEST(ParseValueTest, NeededCoversTheWholeBulk) {
  Value v;
  const ParseResult r = parse_value("$100\r\nabc", v);
  ASSERT_EQ(r.status, ParseStatus::kIncomplete);
  EXPECT_EQ(r.needed, 6u + 100 + 2);
}

TEST(ParseValueTest, Errors) {
  EXPECT_EQ(parse_error("?\r\n"), "ERR Protocol error: unknown type byte 0x3f");
  EXPECT_EQ(parse_error(":12a\r\n"), "ERR Protocol error: invalid integer");
  EXPECT_EQ(parse_error(":\r\n"), "ERR Protocol error: invalid integer");
  EXPECT_EQ(parse_error(":99999999999999999999\r\n"), "ERR Protocol error: invalid integer");
  EXPECT_EQ(parse_error("$-2\r\n"), "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(parse_error("!-1\r\n"), "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(parse_error("$1\r\nab\r\n"), "ERR Protocol error: bulk string not followed by CRLF");
  EXPECT_EQ(parse_error("%-1\r\n"), "ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(parse_error("+a\rb\r\n"), "ERR Protocol error: line not terminated by CRLF");
  EXPECT_EQ(parse_error("_x\r\n"), "ERR Protocol error: invalid null");
  EXPECT_EQ(parse_error("#x\r\n"), "ERR Protocol error: invalid boolean");
  EXPECT_EQ(parse_error(",1.5x\r\n"), "ERR Protocol error: invalid double");
  EXPECT_EQ(parse_error(",\r\n"), "ERR Protocol error: invalid double");
  EXPECT_EQ(parse_error("(1a\r\n"), "ERR Protocol error: invalid big number");
  EXPECT_EQ(parse_error("=3\r\ntxt\r\n"), "ERR Protocol error: invalid verbatim string");
}

TEST(ParseValueTest, Limits) {
  Limits limits;
  limits.max_bulk_len = 3;
  limits.max_multibulk_len = 2;
  limits.max_inline_len = 8;
  EXPECT_EQ(parse_error("$4\r\n", limits), "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(parse_error("*3\r\n", limits), "ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(parse_error("%2\r\n", limits), "ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(parse_error("+123456789", limits), "ERR Protocol error: line too long");
  Value v;
  EXPECT_EQ(parse_value("+12345678", v, limits).status, ParseStatus::kIncomplete);
}

TEST(ParseValueTest, NestingIsBounded) {
  std::string deep;
  for (int i = 0; i < 128; ++i) deep += "*1\r\n";
  Value v = parse_ok(deep + ":1\r\n");
  int depth = 0;
  for (const Value* p = &v; p->type == Type::kArray; p = &p->elements[0]) ++depth;
  EXPECT_EQ(depth, 128);
  EXPECT_EQ(parse_error("*1\r\n" + deep + ":1\r\n"), "ERR Protocol error: nesting too deep");
  // Far deeper input must fail the same way, not overflow the stack.
  std::string very_deep;
  for (int i = 0; i < 1000000; ++i) very_deep += ">1\r\n";
  EXPECT_EQ(parse_error(very_deep), "ERR Protocol error: nesting too deep");
}

TEST(ParseValueTest, HugeClaimedCountIsCheap) {
  Value v;
  EXPECT_EQ(parse_value("*1048576\r\n:1\r\n", v).status, ParseStatus::kIncomplete);
}

// Writes one reply of every type with w, in either protocol.
void write_everything(Writer& w) {
  w.array(13);
  w.simple("OK");
  w.error("ERR boom");
  w.integer(-12345);
  w.bulk("bin\0\r\nary"s);
  w.null();
  w.null_array();
  w.map(2);
  w.bulk("k1");
  w.integer(1);
  w.bulk("k2");
  w.dbl(2.5);
  w.set(1);
  w.bulk("m");
  w.push(2);
  w.bulk("message");
  w.bulk("hi");
  w.boolean(true);
  w.dbl(-std::numeric_limits<double>::infinity());
  w.verbatim("txt", "multi\nline");
  w.array(0);
}

TEST(RoundTripTest, Resp3KeepsEveryType) {
  std::string out;
  Writer w(&out, 3);
  write_everything(w);
  const Value v = parse_ok(out);
  ASSERT_EQ(v.type, Type::kArray);
  ASSERT_EQ(v.elements.size(), 13u);
  const auto& e = v.elements;
  EXPECT_EQ(e[0].type, Type::kSimple);
  EXPECT_EQ(e[0].str, "OK");
  EXPECT_EQ(e[1].type, Type::kError);
  EXPECT_EQ(e[1].str, "ERR boom");
  EXPECT_EQ(e[2].integer, -12345);
  EXPECT_EQ(e[3].str, "bin\0\r\nary"s);
  EXPECT_EQ(e[4].type, Type::kNull);
  EXPECT_EQ(e[5].type, Type::kNull);
  ASSERT_EQ(e[6].type, Type::kMap);
  ASSERT_EQ(e[6].elements.size(), 4u);
  EXPECT_EQ(e[6].elements[3].type, Type::kDouble);
  EXPECT_EQ(e[6].elements[3].str, "2.5");
  EXPECT_EQ(e[7].type, Type::kSet);
  EXPECT_EQ(e[8].type, Type::kPush);
  EXPECT_EQ(e[8].elements[1].str, "hi");
  EXPECT_EQ(e[9].type, Type::kBoolean);
  EXPECT_EQ(e[9].integer, 1);
  EXPECT_EQ(e[10].type, Type::kDouble);
  EXPECT_EQ(e[10].str, "-inf");
  EXPECT_EQ(e[11].type, Type::kVerbatim);
  EXPECT_EQ(e[11].str, "multi\nline");
  EXPECT_EQ(e[12].type, Type::kArray);
  EXPECT_TRUE(e[12].elements.empty());
}

TEST(RoundTripTest, Resp2FlattensResp3Types) {
  std::string out;
  Writer w(&out, 2);
  write_everything(w);
  const Value v = parse_ok(out);
  ASSERT_EQ(v.elements.size(), 13u);
  const auto& e = v.elements;
  EXPECT_EQ(e[3].str, "bin\0\r\nary"s);
  EXPECT_EQ(e[4].type, Type::kNull);
  EXPECT_EQ(e[5].type, Type::kNull);
  EXPECT_EQ(e[6].type, Type::kArray);
  EXPECT_EQ(e[6].elements.size(), 4u);
  EXPECT_EQ(e[6].elements[3].type, Type::kBulk);
  EXPECT_EQ(e[6].elements[3].str, "2.5");
  EXPECT_EQ(e[7].type, Type::kArray);
  EXPECT_EQ(e[8].type, Type::kArray);
  EXPECT_EQ(e[9].type, Type::kInteger);
  EXPECT_EQ(e[9].integer, 1);
  EXPECT_EQ(e[10].str, "-inf");
  EXPECT_EQ(e[11].type, Type::kBulk);
  EXPECT_EQ(e[11].str, "multi\nline");
}

}  // namespace
}  // namespace statekv::resp
