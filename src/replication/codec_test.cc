#include "replication/codec.h"

#include <gtest/gtest.h>

#include <limits>

namespace statekv::replication {
namespace {

struct Hello {
  static constexpr uint32_t kTag = 7;
  uint64_t n = 0;
  std::string text;
  std::optional<std::string> maybe;
  bool operator==(const Hello&) const = default;
  void encode(Writer& w) const {
    w.varint(n);
    w.bytes(text);
    w.optional_bytes(maybe);
  }
  static Result<Hello> decode(Reader& r) {
    Hello h;
    auto n = r.varint();
    if (!n.ok()) return n.status();
    h.n = *n;
    auto t = r.bytes();
    if (!t.ok()) return t.status();
    h.text = *t;
    auto m = r.optional_bytes();
    if (!m.ok()) return m.status();
    h.maybe = *m;
    return h;
  }
};

struct Bye {
  static constexpr uint32_t kTag = 300;  // needs a two-byte varint tag
  int64_t delta = 0;
  uint32_t crc = 0;
  bool operator==(const Bye&) const = default;
  void encode(Writer& w) const {
    w.svarint(delta);
    w.fixed32(crc);
  }
  static Result<Bye> decode(Reader& r) {
    auto d = r.svarint();
    if (!d.ok()) return d.status();
    auto c = r.fixed32();
    if (!c.ok()) return c.status();
    return Bye{*d, *c};
  }
};

using Msg = std::variant<Hello, Bye>;

TEST(Codec, VarintRoundTripsEdgeValues) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{16383},
                     uint64_t{16384}, uint64_t{1} << 35, std::numeric_limits<uint64_t>::max()}) {
    Writer w;
    w.varint(v);
    Reader r(w.data());
    auto got = r.varint();
    ASSERT_TRUE(got.ok()) << v;
    EXPECT_EQ(*got, v);
    EXPECT_TRUE(r.at_end());
  }
}

TEST(Codec, SignedAndFixedRoundTrip) {
  Writer w;
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1}, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max()}) {
    w.svarint(v);
  }
  w.fixed32(0xdeadbeef);
  w.fixed64(0x0123456789abcdefULL);
  Reader r(w.data());
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1}, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(*r.svarint(), v);
  }
  EXPECT_EQ(*r.fixed32(), 0xdeadbeefu);
  EXPECT_EQ(*r.fixed64(), 0x0123456789abcdefULL);
  EXPECT_TRUE(r.at_end());
}

TEST(Codec, MessagesRoundTripThroughTheEnvelope) {
  const Msg hello = Hello{42, std::string("a\0b", 3), std::nullopt};
  const Msg hello2 = Hello{0, "", std::string("")};
  const Msg bye = Bye{-5, 77};
  for (const Msg& m : {hello, hello2, bye}) {
    const std::string bytes = encode_message(m);
    EXPECT_EQ(static_cast<uint8_t>(bytes[0]), kCodecVersion);
    auto back = decode_message<Msg>(bytes);
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(*back, m);
  }
}

TEST(Codec, EveryTruncationIsCorruptionNotACrash) {
  const std::string bytes = encode_message(Msg(Hello{1u << 20, "payload", std::string("opt")}));
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode_message<Msg>(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_TRUE(r.status().is_corruption());
  }
}

TEST(Codec, RejectsWrongVersionUnknownTagAndTrailingBytes) {
  std::string bytes = encode_message(Msg(Bye{1, 2}));
  std::string wrong_version = bytes;
  wrong_version[0] = static_cast<char>(kCodecVersion + 1);
  EXPECT_TRUE(decode_message<Msg>(wrong_version).status().is_corruption());

  Writer w;
  w.u8(kCodecVersion);
  w.varint(99);
  EXPECT_NE(decode_message<Msg>(w.data()).status().message().find("unknown message tag 99"),
            std::string::npos);

  EXPECT_TRUE(decode_message<Msg>(bytes + "x").status().is_corruption());
}

TEST(Codec, RejectsGarbledPrimitives) {
  // Eleven continuation bytes: longer than any 64-bit varint.
  std::string overlong(11, '\x80');
  EXPECT_TRUE(Reader(overlong).varint().status().is_corruption());
  // Ten bytes whose last carries more than the 64th bit.
  std::string overflow(9, '\xff');
  overflow.push_back('\x02');
  EXPECT_TRUE(Reader(overflow).varint().status().is_corruption());
  // A boolean must be 0 or 1.
  EXPECT_TRUE(Reader(std::string("\x02", 1)).boolean().status().is_corruption());
  // A length past the end.
  Writer w;
  w.varint(1000);
  w.u8('x');
  EXPECT_TRUE(Reader(w.data()).bytes().status().is_corruption());
}

}  // namespace
}  // namespace statekv::replication
