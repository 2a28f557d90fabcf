// MULTI, EXEC, DISCARD, WATCH, UNWATCH (server/transaction.h): Redis 7.0's
// replies and error texts.
#include <algorithm>
#include <exception>

#include "server/command.h"
#include "server/command_table.h"

namespace statekv::server {
namespace {

// Where the transaction's one Mutation goes: the session's proposer when it has
// one (a replica group's leader evaluating it), else the store's group.
Proposer& proposer_of(CommandContext& c) {
  return c.session.proposer != nullptr ? *c.session.proposer : *c.state.proposer;
}

TransactionState& txn_state(CommandContext& c) {
  if (!c.session.txn) {
    c.session.txn = std::make_shared<TransactionState>(c.state.watches, c.state.next_watcher);
  }
  return *c.session.txn;
}

void cmd_multi(CommandContext& c) {
  TransactionState& t = txn_state(c);
  // Redis answers but does not abort the transaction.
  if (t.queuing) return c.out.error("ERR MULTI calls can not be nested");
  t.queuing = true;
  t.aborted = false;
  t.queue.clear();
  c.out.simple("OK");
}

void cmd_discard(CommandContext& c) {
  if (!c.session.txn || !c.session.txn->queuing) return c.out.error("ERR DISCARD without MULTI");
  c.session.txn->discard();
  c.out.simple("OK");
}

// One queued command, resolved against the table.
struct Queued {
  const CommandSpec* spec = nullptr;
  std::string fullname;  // "get", "client|list"
  std::vector<std::string_view> argv;
};

void cmd_exec(CommandContext& c) {
  if (!c.session.txn || !c.session.txn->queuing) return c.out.error("ERR EXEC without MULTI");
  TransactionState& t = *c.session.txn;
  if (t.aborted) {
    t.discard();
    return c.out.error("EXECABORT Transaction discarded because of previous errors.");
  }
  // Every queued command passed the table lookup and the arity check when it
  // was queued; resolve them again and gather the keys they name.
  std::vector<std::vector<std::string>> queue = std::move(t.queue);
  t.queue.clear();
  std::vector<Queued> commands;
  commands.reserve(queue.size());
  std::vector<std::string_view> keys;
  bool all = false;
  for (const auto& args : queue) {
    Queued q;
    q.argv.assign(args.begin(), args.end());
    const CommandSpec* spec = c.state.table.find(q.argv[0]);
    q.spec = spec;
    q.fullname = spec != nullptr ? std::string(spec->name) : std::string();
    if (spec != nullptr && !spec->subcommands.empty() && q.argv.size() >= 2) {
      q.spec = CommandTable::find_sub(*spec, q.argv[1]);
      if (q.spec != nullptr) q.fullname += "|" + std::string(q.spec->name);
    }
    if (q.spec == nullptr || q.spec->handler == nullptr) {
      t.discard();  // cannot happen: refused while queueing
      return c.out.error("EXECABORT Transaction discarded because of previous errors.");
    }
    // A flush touches every key: the transaction then holds every stripe.
    all = all || q.spec->name == "flushall" || q.spec->name == "flushdb";
    // Movable keys (SINTERCARD, LMPOP...) included: every stripe a queued
    // command locks must be in the transaction's set.
    for (size_t i : key_positions(*q.spec, q.argv)) keys.push_back(q.argv[i]);
    commands.push_back(std::move(q));
  }
  const std::vector<std::string> watched =
      t.watching ? c.state.watches.keys(t.watcher) : std::vector<std::string>{};
  if (t.remote_node != 0) {
    // Watched on another node (coord/ routes such an EXEC there): they cannot
    // be checked here.
    t.discard();
    return c.out.null_array();
  }
  for (const std::string& k : watched) keys.push_back(k);

  // No other command touches these keys until the transaction is committed.
  Store::Locked guard = c.store().lock_transaction(keys, all);
  if (t.watching && c.state.watches.changed(t.watcher, c.now_ms)) {
    t.discard();
    return c.out.null_array();
  }
  t.discard();  // leaves MULTI and unwatches, as Redis does before running

  Transaction txn;
  const size_t mark = c.out.buffer()->size();
  c.out.array(commands.size());
  for (const Queued& q : commands) {
    CommandContext qc{c.state, c.session, q.argv, c.out, *q.spec, q.fullname, c.now_ms};
    qc.txn = &txn;
    const size_t reply_mark = c.out.buffer()->size();
    try {
      q.spec->handler(qc);
    } catch (const std::exception& e) {
      // One well-formed reply for this command; the array keeps its shape.
      c.out.buffer()->resize(reply_mark);
      c.out.error(std::string("ERR internal error: ") + e.what());
    }
    c.note(qc.seq);
    if (c.session.tracking && c.state.ctx.router == nullptr && (q.spec->flags & kReadonly) &&
        (q.spec->first_key > 0 || q.spec->numkeys_index > 0)) {
      track_read(qc);
    }
  }
  if (txn.empty()) return;

  // The whole transaction's effect: one proposal, one Mutation.
  auto failed = [&](const Status& s) {
    // Nothing was committed: the client gets one error instead of replies
    // that claim effects.
    c.out.buffer()->resize(mark);
    c.fail(s);
  };
  if (txn.cleared() && txn.staged_keys() == 0) {
    c.state.flushing();
    auto ticket = proposer_of(c).propose_clear(c.now_ms);
    if (!ticket.ok()) return failed(ticket.status());
    c.note(ticket->durable_at);
    if (c.state.tracking_clients.load(std::memory_order_relaxed) > 0) {
      c.state.deliver(c.state.tracking.on_flush(c.session.id));
    }
    return;
  }
  std::vector<std::string> cleared_keys;
  auto writes = txn.writes(c.store(), &cleared_keys);
  if (!writes.ok()) return failed(writes.status());
  Proposer& proposer = proposer_of(c);
  auto ticket = proposer.propose(c.now_ms, *writes);
  if (!ticket.ok()) return failed(ticket.status());
  c.note(ticket->durable_at);
  std::vector<std::string_view> written;
  written.reserve(writes->size());
  for (const Store::Write& w : *writes) written.push_back(w.key);
  // A collection's element writes name its key too: once is enough.
  std::sort(written.begin(), written.end());
  written.erase(std::unique(written.begin(), written.end()), written.end());
  c.state.committed(c.session.id, written, nullptr, proposer.applies_now());
}

void cmd_watch(CommandContext& c) {
  TransactionState& t = txn_state(c);
  if (t.queuing) return c.out.error("ERR WATCH inside MULTI is not allowed");
  for (std::string_view key : c.argv.subspan(1)) {
    // Under the key's stripe lock, so no write of it falls between what it
    // holds now and the registration. An expired key is erased first (as any
    // read does): it is absent from now on, and its erase is no change.
    auto r = lock_and_read(c, key);
    if (!r) return;
    c.state.watches.watch(t.watcher, key, r->live ? r->rec.expire_ms : 0);
    t.watching = true;
    t.watched_keys.emplace_back(key);
  }
  c.out.simple("OK");
}

void cmd_unwatch(CommandContext& c) {
  if (c.session.txn) c.session.txn->unwatch();
  c.out.simple("OK");
}

}  // namespace

void add_transaction_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "transactions";
  constexpr uint32_t kTxn = kNoscript | kLoading | kStale;
  out.push_back({"multi", 1, kTxn | kFast | kAllowBusy, 0, 0, 0, g,
                 "Mark the start of a transaction block", "1.2.0", "O(1)", "", cmd_multi});
  out.push_back({"exec", 1, kTxn | kSkipSlowlog, 0, 0, 0, g,
                 "Execute all commands issued after MULTI", "1.2.0",
                 "Depends on commands in the transaction", "", cmd_exec});
  out.push_back({"discard", 1, kTxn | kFast | kAllowBusy, 0, 0, 0, g,
                 "Discard all commands issued after MULTI", "2.0.0",
                 "O(N), when N is the number of queued commands", "", cmd_discard});
  out.push_back({"watch", -2, kTxn | kFast | kAllowBusy, 1, -1, 1, g,
                 "Watch the given keys to determine execution of the MULTI/EXEC block", "2.2.0",
                 "O(1) for every key.", "key:key...", cmd_watch});
  out.push_back({"unwatch", 1, kTxn | kFast | kAllowBusy, 0, 0, 0, g,
                 "Forget about all watched keys", "2.2.0", "O(1)", "", cmd_unwatch});
}

}  // namespace statekv::server
