// CLUSTER: what this node knows about the cluster it belongs to
// (ServerContext::cluster). A standalone server answers as Redis does with
// cluster support disabled.
#include "server/command.h"

namespace statekv::server {
namespace {

constexpr std::string_view kDisabled = "ERR This instance has cluster support disabled";

void cmd_cluster_info(CommandContext& c) {
  if (c.state.ctx.cluster == nullptr) {
    c.out.error(kDisabled);
    return;
  }
  c.out.verbatim("txt", c.state.ctx.cluster->cluster_info());
}

void cmd_cluster_myid(CommandContext& c) {
  if (c.state.ctx.cluster == nullptr) {
    c.out.error(kDisabled);
    return;
  }
  c.out.bulk(c.state.ctx.cluster->my_id());
}

void cmd_cluster_help(CommandContext& c) {
  static constexpr std::string_view kLines[] = {
      "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "INFO",
      "    Return information about the cluster: state, members, raft leader, term,",
      "    commit and applied index, metadata epoch and each member's lag.",
      "MYID",
      "    Return the node id.",
      "HELP",
      "    Print this help.",
  };
  c.out.array(std::size(kLines));
  for (auto l : kLines) c.out.simple(l);
}

}  // namespace

void add_cluster_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "cluster";
  CommandSpec cluster{"cluster", -2, 0, 0, 0, 0, g, "A container for Redis Cluster commands.",
                      "3.0.0", "Depends on subcommand.", "", nullptr};
  cluster.subcommands.push_back({"info", 2, kStale, 0, 0, 0, g,
                                 "Returns information about the state of a node.", "3.0.0",
                                 "O(1)", "", cmd_cluster_info});
  cluster.subcommands.push_back({"myid", 2, kStale, 0, 0, 0, g, "Returns the ID of a node.",
                                 "3.0.0", "O(1)", "", cmd_cluster_myid});
  cluster.subcommands.push_back({"help", 2, kLoading | kStale, 0, 0, 0, g,
                                 "Returns helpful text about the different subcommands.", "5.0.0",
                                 "O(1)", "", cmd_cluster_help});
  out.push_back(std::move(cluster));
}

}  // namespace statekv::server
