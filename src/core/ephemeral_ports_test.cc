#include "core/ephemeral_ports.h"

#include <gtest/gtest.h>

namespace statekv {
namespace {

TEST(EphemeralPorts, OnlyAPortInTheRangeGetsTheHint) {
  const std::pair<uint16_t, uint16_t> range{32768, 60999};
  EXPECT_EQ(ephemeral_port_hint(17001, range), "");
  EXPECT_EQ(ephemeral_port_hint(32767, range), "");
  const std::string hint = ephemeral_port_hint(37100, range);
  EXPECT_NE(hint.find("port 37100 is in this machine's ephemeral port range (32768-60999)"),
            std::string::npos)
      << hint;
  EXPECT_NE(hint.find("below 32768"), std::string::npos) << hint;
  EXPECT_EQ(ephemeral_port_hint(37100, std::nullopt), "");
}

TEST(EphemeralPorts, TheKernelsRangeIsRead) {
  auto range = ephemeral_port_range();
  if (!range) GTEST_SKIP() << "no /proc/sys/net/ipv4/ip_local_port_range here";
  EXPECT_LE(range->first, range->second);
}

}  // namespace
}  // namespace statekv
