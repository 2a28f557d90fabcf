#include "server/network.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace statekv::server {

NetworkServer::NetworkServer(ServerContext& ctx, Service& service, ClientRegistryImpl& registry)
    : ctx_(ctx) {
  const unsigned n = std::max(1u, ctx.io_threads);
  for (unsigned i = 0; i < n; ++i) {
    threads_.push_back(std::make_shared<NetworkThread>(i, *ctx.config));
  }
  ConnectionEnv env;
  env.service = &service;
  env.engine = ctx.engine;
  env.stats = ctx.stats;
  env.registry = &registry;
  env.config = ctx.config;
  env.live = &live_;
  env.pubsub = ctx.pubsub.get();
  listener_ = std::make_unique<Listener>(threads_, env);
}

NetworkServer::~NetworkServer() {
  stop();
}

void NetworkServer::set_busy_poll(std::chrono::microseconds busy_poll) {
  for (auto& t : threads_) t->set_busy_poll(busy_poll);
}

Status NetworkServer::start() {
  const ServerConfig config = ctx_.config->snapshot();
  if (Status s = listener_->listen(config.bind, config.port); !s.ok()) return s;
  for (auto& t : threads_) t->start();
  listener_->start();
  running_ = true;
  return Status::OK();
}

uint16_t NetworkServer::port() const {
  return listener_->port();
}

void NetworkServer::stop() {
  if (!running_) return;
  running_ = false;
  // The listener lives on thread 0: its close is queued before that thread's
  // stop, so no connection is accepted after the threads start closing.
  listener_->stop();
  for (auto& t : threads_) t->stop();
  for (auto& t : threads_) t->join();
  spdlog::debug("network stopped");
}

}  // namespace statekv::server
