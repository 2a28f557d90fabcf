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

// The handlers below all need the cluster; without one they answer as Redis
// does with cluster support disabled.
#define SKV_NEED_CLUSTER(c)                  \
  if ((c).state.ctx.cluster == nullptr) {    \
    (c).out.error(kDisabled);                \
    return;                                  \
  }

void cmd_cluster_slots(CommandContext& c) {
  SKV_NEED_CLUSTER(c);
  c.state.ctx.cluster->cluster_slots(c.out);
}

void cmd_cluster_shards(CommandContext& c) {
  SKV_NEED_CLUSTER(c);
  c.state.ctx.cluster->cluster_shards(c.out);
}

void cmd_cluster_nodes(CommandContext& c) {
  SKV_NEED_CLUSTER(c);
  c.state.ctx.cluster->cluster_nodes(c.out);
}

void cmd_cluster_keyslot(CommandContext& c) {
  SKV_NEED_CLUSTER(c);
  c.state.ctx.cluster->cluster_keyslot(c.argv[2], c.out);
}

// CLUSTER REDIRECTS ON|OFF: this connection gets MOVED for keys of a slots
// keyspace that another node owns, instead of the node routing them.
void cmd_cluster_redirects(CommandContext& c) {
  SKV_NEED_CLUSTER(c);
  if (iequals(c.argv[2], "on")) {
    c.session.redirects = true;
  } else if (iequals(c.argv[2], "off")) {
    c.session.redirects = false;
  } else {
    c.out.error(kSyntaxError);
    return;
  }
  c.out.simple("OK");
}

// READONLY, READWRITE and ASKING: what a Redis Cluster client sends to a
// replica it reads from (READONLY, READWRITE) or before the command an ASK
// redirect named (ASKING). Every node serves every key here, so they change
// nothing: a read keeps its keyspace's consistency, at least as strong as a
// Redis replica's (CONSISTENCY eventual reads at the nearest replica), and no
// node answers ASK. They answer OK so that such clients connect.
void cmd_cluster_connection_mode(CommandContext& c) {
  SKV_NEED_CLUSTER(c);
  c.out.simple("OK");
}

void cmd_locate(CommandContext& c) {
  SKV_NEED_CLUSTER(c);
  // Asked of a node that does not lead the key's replica group: the leader
  // tells every replica's applied index and lag (a connection that cannot
  // wait for the answer gets this node's own view).
  if (c.session.defer && c.state.ctx.cluster->locate_asks_leader(c.argv[1])) {
    server::DeferredReply later = c.session.defer();
    c.state.ctx.cluster->locate_at_leader(
        std::string(c.argv[1]), c.session.resp,
        [later](std::string reply) { later(std::move(reply), 0); });
    return;
  }
  c.state.ctx.cluster->locate(c.argv[1], c.out);
}

void cmd_keyspace(CommandContext& c) {
  SKV_NEED_CLUSTER(c);
  c.state.ctx.cluster->keyspace(c.argv.subspan(1), c.out);
}

void cmd_cluster_help(CommandContext& c) {
  static constexpr std::string_view kLines[] = {
      "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "INFO",
      "    Return information about the cluster: state, members, raft leader, term,",
      "    commit and applied index, metadata epoch and each member's lag.",
      "MYID",
      "    Return the node id.",
      "SLOTS",
      "    Return the slot ranges of the slots keyspace and the nodes serving them.",
      "SHARDS",
      "    Return the shards of the slots keyspace: slot ranges and nodes.",
      "NODES",
      "    Return the members in Redis Cluster's CLUSTER NODES format.",
      "KEYSLOT <key>",
      "    Return the hash slot of <key>.",
      "REDIRECTS ON|OFF",
      "    ON: answer MOVED for keys another node serves (slots keyspaces) instead of routing.",
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
  cluster.subcommands.push_back({"slots", 2, kStale, 0, 0, 0, g,
                                 "Returns the mapping of cluster slots to nodes.", "3.0.0",
                                 "O(N) where N is the total number of cluster nodes", "",
                                 cmd_cluster_slots});
  cluster.subcommands.push_back({"shards", 2, kStale, 0, 0, 0, g,
                                 "Returns the mapping of cluster slots to shards.", "7.0.0",
                                 "O(N) where N is the total number of cluster nodes", "",
                                 cmd_cluster_shards});
  cluster.subcommands.push_back({"nodes", 2, kStale, 0, 0, 0, g,
                                 "Returns the cluster configuration for a node.", "3.0.0",
                                 "O(N) where N is the total number of Cluster nodes", "",
                                 cmd_cluster_nodes});
  cluster.subcommands.push_back({"keyslot", 3, kStale, 0, 0, 0, g,
                                 "Returns the hash slot for a key.", "3.0.0",
                                 "O(N) where N is the number of bytes in the key", "key:string",
                                 cmd_cluster_keyslot});
  cluster.subcommands.push_back({"redirects", 3, kStale, 0, 0, 0, g,
                                 "Turns MOVED redirects on or off for this connection (statekv).",
                                 "statekv", "O(1)", "(mode: ON | OFF)", cmd_cluster_redirects});
  cluster.subcommands.push_back({"help", 2, kLoading | kStale, 0, 0, 0, g,
                                 "Returns helpful text about the different subcommands.", "5.0.0",
                                 "O(1)", "", cmd_cluster_help});
  out.push_back(std::move(cluster));
  out.push_back({"readonly", 1, kLoading | kStale | kFast, 0, 0, 0, g,
                 "Enables read-only queries for a connection to a Redis Cluster replica node.",
                 "3.0.0", "O(1)", "", cmd_cluster_connection_mode});
  out.push_back({"readwrite", 1, kLoading | kStale | kFast, 0, 0, 0, g,
                 "Enables read-write queries for a connection to a Redis Cluster replica node.",
                 "3.0.0", "O(1)", "", cmd_cluster_connection_mode});
  out.push_back({"asking", 1, kFast, 0, 0, 0, g,
                 "Signals that a cluster client is following an -ASK redirect.", "3.0.0", "O(1)",
                 "", cmd_cluster_connection_mode});
  out.push_back({"locate", 2, kReadonly | kFast, 0, 0, 0, g,
                 "Shows where a key lives: keyspace, partitioner, shard, owners and epoch "
                 "(statekv).",
                 "statekv", "O(1)", "key:key", cmd_locate});
  CommandSpec keyspace{"keyspace", -2, 0, 0, 0, 0, g,
                       "Creates, alters, drops and lists keyspaces (statekv).", "statekv",
                       "Depends on subcommand.", "", nullptr};
  for (std::string_view sub : {"create", "alter", "drop", "list", "info", "help"}) {
    keyspace.subcommands.push_back({sub, sub == "list" || sub == "help" ? 2 : -3,
                                    sub == "list" || sub == "info" || sub == "help" ? kReadonly
                                                                                    : kWrite,
                                    0, 0, 0, g, "See KEYSPACE HELP.", "statekv", "O(1)", "",
                                    cmd_keyspace});
  }
  out.push_back(std::move(keyspace));
}

}  // namespace statekv::server
