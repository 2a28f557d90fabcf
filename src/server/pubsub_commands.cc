// Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH,
// PUBSUB CHANNELS / NUMSUB / NUMPAT / HELP — Redis 7.0 semantics over the
// node's PubSub registry (server/pubsub.h) and the Session's own sets.
//
// In a cluster these are all local to the node the client is connected to, as
// in Redis Cluster: a subscription lives on that node, PUBLISH's reply counts
// that node's receivers, and PUBSUB reports that node's subscriptions. The
// coordinator (coord/) additionally hands a PUBLISH to every other node, which
// delivers it to its own subscribers.
#include <optional>
#include <string>
#include <vector>

#include "server/command.h"

namespace statekv::server {
namespace {

// Redis's reply to each (un)subscription: a push in RESP3, an array in RESP2.
void confirm(CommandContext& c, std::string_view kind, const std::string_view* name) {
  c.out.push(3);
  c.out.bulk(kind);
  if (name != nullptr) {
    c.out.bulk(*name);
  } else {
    c.out.null();
  }
  c.out.integer(static_cast<int64_t>(c.session.channels.size() + c.session.patterns.size()));
}

void publish_counts(Session& s) {
  s.channel_count.store(static_cast<uint32_t>(s.channels.size()), std::memory_order_relaxed);
  s.pattern_count.store(static_cast<uint32_t>(s.patterns.size()), std::memory_order_relaxed);
}

// Internal and routed sessions have no connection to deliver to.
bool can_subscribe(CommandContext& c) {
  if (c.session.subscriber != nullptr) return true;
  c.out.error("ERR '" + std::string(c.fullname) +
              "' needs a client connection that can receive messages");
  return false;
}

// SUBSCRIBE / PSUBSCRIBE: patterns selects which set and which registry map.
void subscribe(CommandContext& c, bool patterns) {
  if (!can_subscribe(c)) return;
  PubSub& registry = *c.state.ctx.pubsub;
  auto& held = patterns ? c.session.patterns : c.session.channels;
  for (size_t i = 1; i < c.argv.size(); ++i) {
    const std::string_view name = c.argv[i];
    if (held.emplace(name).second) {
      if (patterns) {
        registry.psubscribe(c.session.subscriber, name);
      } else {
        registry.subscribe(c.session.subscriber, name);
      }
      publish_counts(c.session);
    }
    confirm(c, patterns ? "psubscribe" : "subscribe", &name);
  }
}

void unsubscribe_one(CommandContext& c, bool patterns, std::string_view name) {
  auto& held = patterns ? c.session.patterns : c.session.channels;
  if (auto it = held.find(name); it != held.end()) {
    if (c.session.subscriber != nullptr) {
      if (patterns) {
        c.state.ctx.pubsub->punsubscribe(c.session.subscriber, name);
      } else {
        c.state.ctx.pubsub->unsubscribe(c.session.subscriber, name);
      }
    }
    held.erase(it);
    publish_counts(c.session);
  }
  confirm(c, patterns ? "punsubscribe" : "unsubscribe", &name);
}

// UNSUBSCRIBE / PUNSUBSCRIBE: the named ones, or all (in the set's order).
void unsubscribe(CommandContext& c, bool patterns) {
  if (c.argv.size() > 1) {
    for (size_t i = 1; i < c.argv.size(); ++i) unsubscribe_one(c, patterns, c.argv[i]);
    return;
  }
  auto& held = patterns ? c.session.patterns : c.session.channels;
  if (held.empty()) {
    confirm(c, patterns ? "punsubscribe" : "unsubscribe", nullptr);
    return;
  }
  while (!held.empty()) {
    const std::string name = *held.begin();  // the reply names it after it left the set
    unsubscribe_one(c, patterns, name);
  }
}

void cmd_subscribe(CommandContext& c) {
  subscribe(c, false);
}
void cmd_psubscribe(CommandContext& c) {
  subscribe(c, true);
}
void cmd_unsubscribe(CommandContext& c) {
  unsubscribe(c, false);
}
void cmd_punsubscribe(CommandContext& c) {
  unsubscribe(c, true);
}

void cmd_publish(CommandContext& c) {
  c.out.integer(static_cast<int64_t>(c.state.ctx.pubsub->publish(c.argv[1], c.argv[2])));
}

void cmd_pubsub_channels(CommandContext& c) {
  if (c.argv.size() > 3) {
    // Redis names the subcommand as the client spelled it.
    return c.out.error("ERR unknown subcommand or wrong number of arguments for '" +
                       std::string(c.argv[1].substr(0, 128)) + "'. Try PUBSUB HELP.");
  }
  std::optional<std::string_view> pattern;
  if (c.argv.size() == 3) pattern = c.argv[2];
  const std::vector<std::string> channels = c.state.ctx.pubsub->channels(pattern);
  c.out.array(channels.size());
  for (const std::string& ch : channels) c.out.bulk(ch);
}

void cmd_pubsub_numsub(CommandContext& c) {
  c.out.array((c.argv.size() - 2) * 2);
  for (size_t i = 2; i < c.argv.size(); ++i) {
    c.out.bulk(c.argv[i]);
    c.out.integer(static_cast<int64_t>(c.state.ctx.pubsub->numsub(c.argv[i])));
  }
}

void cmd_pubsub_numpat(CommandContext& c) {
  c.out.integer(static_cast<int64_t>(c.state.ctx.pubsub->pattern_count()));
}

void cmd_pubsub_help(CommandContext& c) {
  static constexpr std::string_view kLines[] = {
      "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "CHANNELS [<pattern>]",
      "    Return the currently active channels matching a <pattern> (default: '*').",
      "NUMPAT",
      "    Return number of subscriptions to patterns.",
      "NUMSUB [<channel> ...]",
      "    Return the number of subscribers for the specified channels, excluding",
      "    pattern subscriptions(default: no channels).",
      "HELP",
      "    Prints this help.",
  };
  c.out.array(std::size(kLines));
  for (auto line : kLines) c.out.simple(line);
}

}  // namespace

void add_pubsub_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "pubsub";
  constexpr uint32_t kSub = kPubsub | kNoscript | kLoading | kStale;
  out.push_back({"subscribe", -2, kSub, 0, 0, 0, g,
                 "Listen for messages published to the given channels", "2.0.0",
                 "O(N) where N is the number of channels to subscribe to.", "channel:string...",
                 cmd_subscribe});
  out.push_back({"unsubscribe", -1, kSub, 0, 0, 0, g,
                 "Stop listening for messages posted to the given channels", "2.0.0",
                 "O(N) where N is the number of clients already subscribed to a channel.",
                 "[channel:string...]", cmd_unsubscribe});
  out.push_back({"psubscribe", -2, kSub, 0, 0, 0, g,
                 "Listen for messages published to channels matching the given patterns", "2.0.0",
                 "O(N) where N is the number of patterns the client is already subscribed to.",
                 "(pattern: pattern:pattern)...", cmd_psubscribe});
  out.push_back({"punsubscribe", -1, kSub, 0, 0, 0, g,
                 "Stop listening for messages posted to channels matching the given patterns",
                 "2.0.0",
                 "O(N+M) where N is the number of patterns the client is already subscribed and M "
                 "is the number of total patterns subscribed in the system (by any client).",
                 "[pattern:pattern...]", cmd_punsubscribe});
  out.push_back({"publish", 3, kPubsub | kLoading | kStale | kFast, 0, 0, 0, g,
                 "Post a message to a channel", "2.0.0",
                 "O(N+M) where N is the number of clients subscribed to the receiving channel and "
                 "M is the total number of subscribed patterns (by any client).",
                 "channel:string message:string", cmd_publish});

  CommandSpec pubsub{"pubsub", -2,
                     0,        0,
                     0,        0,
                     g,        "A container for Pub/Sub commands",
                     "2.8.0",  "Depends on subcommand.",
                     "",       nullptr};
  constexpr uint32_t kInfo = kPubsub | kLoading | kStale;
  pubsub.subcommands.push_back(
      {"channels", -2, kInfo, 0, 0, 0, g, "List active channels", "2.8.0",
       "O(N) where N is the number of active channels, and assuming constant time pattern "
       "matching (relatively short channels and patterns)",
       "[pattern:pattern]", cmd_pubsub_channels});
  pubsub.subcommands.push_back(
      {"numsub", -2, kInfo, 0, 0, 0, g, "Get the count of subscribers for channels", "2.8.0",
       "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
       "[channel:string...]", cmd_pubsub_numsub});
  pubsub.subcommands.push_back({"numpat", 2, kInfo, 0, 0, 0, g,
                                "Get the count of unique patterns pattern subscriptions", "2.8.0",
                                "O(1)", "", cmd_pubsub_numpat});
  pubsub.subcommands.push_back({"help", 2, kLoading | kStale, 0, 0, 0, g,
                                "Show helpful text about the different subcommands", "6.2.0",
                                "O(1)", "", cmd_pubsub_help});
  out.push_back(std::move(pubsub));
}

}  // namespace statekv::server
