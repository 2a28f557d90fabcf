#include "server/pubsub.h"

#include <algorithm>
#include <mutex>

#include "resp/writer.h"
#include "server/context.h"
#include "server/glob.h"

namespace statekv::server {
namespace {

std::shared_ptr<const PubSubMessage> make_message(std::string_view channel,
                                                  std::string_view payload,
                                                  const std::string* pattern) {
  auto m = std::make_shared<PubSubMessage>();
  m->channel.assign(channel);
  m->via_pattern = pattern != nullptr;
  if (pattern != nullptr) m->pattern = *pattern;
  for (int proto : {2, 3}) {
    std::string& bytes = proto == 2 ? m->resp2 : m->resp3;
    resp::Writer w(&bytes, proto);
    w.push(pattern != nullptr ? 4 : 3);
    w.bulk(pattern != nullptr ? "pmessage" : "message");
    if (pattern != nullptr) w.bulk(*pattern);
    w.bulk(channel);
    w.bulk(payload);
  }
  return m;
}

}  // namespace

void PubSub::add(std::unordered_map<std::string, Subscribers>& map, PubSubSubscriber* s,
                 std::string_view name) {
  auto it = map.find(std::string(name));
  if (it == map.end()) it = map.emplace(std::string(name), Subscribers{}).first;
  it->second.push_back(s);
}

void PubSub::remove(std::unordered_map<std::string, Subscribers>& map, PubSubSubscriber* s,
                    std::string_view name) {
  auto it = map.find(std::string(name));
  if (it == map.end()) return;
  Subscribers& subs = it->second;
  auto pos = std::find(subs.begin(), subs.end(), s);
  if (pos != subs.end()) {
    *pos = subs.back();
    subs.pop_back();
  }
  if (subs.empty()) map.erase(it);
}

void PubSub::subscribe(PubSubSubscriber* s, std::string_view channel) {
  std::unique_lock lock(mu_);
  add(channels_, s, channel);
}

void PubSub::unsubscribe(PubSubSubscriber* s, std::string_view channel) {
  std::unique_lock lock(mu_);
  remove(channels_, s, channel);
}

void PubSub::psubscribe(PubSubSubscriber* s, std::string_view pattern) {
  std::unique_lock lock(mu_);
  add(patterns_, s, pattern);
}

void PubSub::punsubscribe(PubSubSubscriber* s, std::string_view pattern) {
  std::unique_lock lock(mu_);
  remove(patterns_, s, pattern);
}

void PubSub::remove_all(PubSubSubscriber* s, const std::vector<std::string_view>& channels,
                        const std::vector<std::string_view>& patterns) {
  std::unique_lock lock(mu_);
  for (std::string_view c : channels) remove(channels_, s, c);
  for (std::string_view p : patterns) remove(patterns_, s, p);
}

size_t PubSub::publish(std::string_view channel, std::string_view payload) {
  size_t receivers = 0;
  std::shared_lock lock(mu_);
  if (auto it = channels_.find(std::string(channel)); it != channels_.end()) {
    auto message = make_message(channel, payload, nullptr);
    for (PubSubSubscriber* s : it->second) s->deliver(message);
    receivers += it->second.size();
  }
  for (const auto& [pattern, subs] : patterns_) {
    if (!glob_match(pattern, channel)) continue;
    auto message = make_message(channel, payload, &pattern);
    for (PubSubSubscriber* s : subs) s->deliver(message);
    receivers += subs.size();
  }
  return receivers;
}

std::vector<std::string> PubSub::channels(std::optional<std::string_view> pattern) const {
  std::vector<std::string> out;
  std::shared_lock lock(mu_);
  for (const auto& [channel, subs] : channels_) {
    if (!pattern || glob_match(*pattern, channel)) out.push_back(channel);
  }
  return out;
}

size_t PubSub::numsub(std::string_view channel) const {
  std::shared_lock lock(mu_);
  auto it = channels_.find(std::string(channel));
  return it == channels_.end() ? 0 : it->second.size();
}

size_t PubSub::pattern_count() const {
  std::shared_lock lock(mu_);
  return patterns_.size();
}

size_t PubSub::channel_count() const {
  std::shared_lock lock(mu_);
  return channels_.size();
}

void leave_all(PubSub& pubsub, Session& session) {
  if (!session.subscribed()) return;
  std::vector<std::string_view> channels(session.channels.begin(), session.channels.end());
  std::vector<std::string_view> patterns(session.patterns.begin(), session.patterns.end());
  if (session.subscriber != nullptr) pubsub.remove_all(session.subscriber, channels, patterns);
  session.channels.clear();
  session.patterns.clear();
  session.channel_count.store(0, std::memory_order_relaxed);
  session.pattern_count.store(0, std::memory_order_relaxed);
}

}  // namespace statekv::server
