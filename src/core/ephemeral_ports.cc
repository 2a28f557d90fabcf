#include "core/ephemeral_ports.h"

#include <fmt/format.h>

#include <fstream>

namespace statekv {

std::optional<std::pair<uint16_t, uint16_t>> ephemeral_port_range() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned low = 0, high = 0;
  if (!(in >> low >> high) || low == 0 || low > high || high > 65535) return std::nullopt;
  return std::pair<uint16_t, uint16_t>(static_cast<uint16_t>(low), static_cast<uint16_t>(high));
}

std::string ephemeral_port_hint(uint16_t port, std::optional<std::pair<uint16_t, uint16_t>> range) {
  if (!range || port < range->first || port > range->second) return {};
  return fmt::format(
      "; port {} is in this machine's ephemeral port range ({}-{}), from which outgoing "
      "connections take their local ports, so one of them may hold it: pick ports below {} "
      "(for `cluster up`, a --base-port whose peer ports, BASE+10000 and up, stay below it too)",
      port, range->first, range->second, range->first);
}

}  // namespace statekv
