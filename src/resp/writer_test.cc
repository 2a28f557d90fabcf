#include "resp/writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace statekv::resp {
namespace {

using namespace std::string_literals;

// Runs fn on a writer speaking `protocol` and returns the bytes it wrote.
template <typename Fn>
std::string encode(int protocol, Fn fn) {
  std::string out;
  Writer w(&out, protocol);
  fn(w);
  return out;
}

// Checks that fn writes resp2 under protocol 2 and resp3 under protocol 3.
template <typename Fn>
void expect_both(Fn fn, std::string_view resp2, std::string_view resp3) {
  EXPECT_EQ(encode(2, fn), resp2);
  EXPECT_EQ(encode(3, fn), resp3);
}

TEST(WriterTest, SimpleString) {
  expect_both([](Writer& w) { w.simple("OK"); }, "+OK\r\n", "+OK\r\n");
  expect_both([](Writer& w) { w.simple(""); }, "+\r\n", "+\r\n");
}

TEST(WriterTest, LineBreaksInSimpleStringsAndErrorsBecomeSpaces) {
  expect_both([](Writer& w) { w.simple("a\r\nb"); }, "+a  b\r\n", "+a  b\r\n");
  expect_both([](Writer& w) { w.error("ERR x\ny"); }, "-ERR x y\r\n", "-ERR x y\r\n");
}

TEST(WriterTest, Error) {
  expect_both([](Writer& w) { w.error("ERR unknown command"); }, "-ERR unknown command\r\n",
              "-ERR unknown command\r\n");
}

TEST(WriterTest, Integer) {
  expect_both([](Writer& w) { w.integer(0); }, ":0\r\n", ":0\r\n");
  expect_both([](Writer& w) { w.integer(-42); }, ":-42\r\n", ":-42\r\n");
  expect_both([](Writer& w) { w.integer(std::numeric_limits<int64_t>::min()); },
              ":-9223372036854775808\r\n", ":-9223372036854775808\r\n");
  expect_both([](Writer& w) { w.integer(std::numeric_limits<int64_t>::max()); },
              ":9223372036854775807\r\n", ":9223372036854775807\r\n");
}

TEST(WriterTest, BulkIsBinarySafe) {
  expect_both([](Writer& w) { w.bulk("a\0\r\nb"s); }, "$5\r\na\0\r\nb\r\n"s, "$5\r\na\0\r\nb\r\n"s);
  expect_both([](Writer& w) { w.bulk(""); }, "$0\r\n\r\n", "$0\r\n\r\n");
}

TEST(WriterTest, Nulls) {
  expect_both([](Writer& w) { w.null(); }, "$-1\r\n", "_\r\n");
  expect_both([](Writer& w) { w.null_array(); }, "*-1\r\n", "_\r\n");
}

TEST(WriterTest, Aggregates) {
  expect_both([](Writer& w) { w.array(3); }, "*3\r\n", "*3\r\n");
  expect_both([](Writer& w) { w.map(2); }, "*4\r\n", "%2\r\n");
  expect_both([](Writer& w) { w.set(5); }, "*5\r\n", "~5\r\n");
  expect_both([](Writer& w) { w.push(3); }, "*3\r\n", ">3\r\n");
  expect_both([](Writer& w) { w.array(0); }, "*0\r\n", "*0\r\n");
}

TEST(WriterTest, Boolean) {
  expect_both([](Writer& w) { w.boolean(true); }, ":1\r\n", "#t\r\n");
  expect_both([](Writer& w) { w.boolean(false); }, ":0\r\n", "#f\r\n");
}

TEST(WriterTest, DoubleAsRedis70PrintsIt) {
  expect_both([](Writer& w) { w.dbl(1.5); }, "$3\r\n1.5\r\n", ",1.5\r\n");
  expect_both([](Writer& w) { w.dbl(0.1); }, "$19\r\n0.10000000000000001\r\n",
              ",0.10000000000000001\r\n");
  expect_both([](Writer& w) { w.dbl(1e20); }, "$5\r\n1e+20\r\n", ",1e+20\r\n");
  expect_both([](Writer& w) { w.dbl(-3); }, "$2\r\n-3\r\n", ",-3\r\n");
  expect_both([](Writer& w) { w.dbl(-0.0); }, "$2\r\n-0\r\n", ",-0\r\n");
  const double inf = std::numeric_limits<double>::infinity();
  expect_both([&](Writer& w) { w.dbl(inf); }, "$3\r\ninf\r\n", ",inf\r\n");
  expect_both([&](Writer& w) { w.dbl(-inf); }, "$4\r\n-inf\r\n", ",-inf\r\n");
  expect_both([](Writer& w) { w.dbl(std::nan("")); }, "$3\r\nnan\r\n", ",nan\r\n");
  expect_both([](Writer& w) { w.dbl(-std::nan("")); }, "$3\r\nnan\r\n", ",nan\r\n");
}

TEST(WriterTest, DoubleMatchesPrintf) {
  for (double d : {3.14159, 1e-300, 123456789012345678.0, 2.5e-7, 1.0 / 3, 1e16, 1e17,
                   std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max()}) {
    char expected[64];
    std::snprintf(expected, sizeof(expected), ",%.17g\r\n", d);
    EXPECT_EQ(encode(3, [&](Writer& w) { w.dbl(d); }), expected);
  }
}

TEST(WriterTest, Verbatim) {
  expect_both([](Writer& w) { w.verbatim("txt", "Some string"); }, "$11\r\nSome string\r\n",
              "=15\r\ntxt:Some string\r\n");
}

TEST(WriterTest, RawIsAppendedUnchanged) {
  expect_both([](Writer& w) { w.raw("+OK\r\n:1\r\n"); }, "+OK\r\n:1\r\n", "+OK\r\n:1\r\n");
}

TEST(WriterTest, AppendsToExistingBytes) {
  std::string out = "+x\r\n";
  Writer w(&out, 3);
  w.array(2);
  w.bulk("a");
  w.integer(1);
  EXPECT_EQ(out, "+x\r\n*2\r\n$1\r\na\r\n:1\r\n");
}

TEST(WriterTest, ProtocolCanChange) {
  std::string out;
  Writer w(&out);
  EXPECT_EQ(w.protocol(), 2);
  w.null();
  w.set_protocol(3);
  EXPECT_EQ(w.protocol(), 3);
  w.null();
  EXPECT_EQ(out, "$-1\r\n_\r\n");
  EXPECT_EQ(w.buffer(), &out);
}

}  // namespace
}  // namespace statekv::resp
