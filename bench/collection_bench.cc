// collection_bench — the cost of one element operation against the size of
// the collection (issue 11 item 4: an HSET on a hash of a million fields costs
// what it costs on a hash of ten). Runs the real command layer in process
// (server::Service over a memory or RocksDB engine), no network, so the
// figures are the command's own work.
//
//   build/bench/collection_bench [--engine memory|rocksdb|both] [--ops 200000]
//
// For each size N it builds a hash and a set of N elements, then times `ops`
// HSETs of new fields, HSETs of existing fields, HGETs, SADDs and SISMEMBERs
// on that collection, and prints microseconds per command.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include "resp/writer.h"
#include "server/config.h"
#include "server/context.h"
#include "storage/engine.h"

using namespace statekv;

namespace {

class Node {
 public:
  explicit Node(std::unique_ptr<storage::Engine> engine)
      : config_(server::ServerConfig{}), engine_(std::move(engine)) {
    ctx_.config = &config_;
    ctx_.engine = engine_.get();
    ctx_.stats = &stats_;
    ctx_.run_id = std::string(40, 'b');
    service_ = server::make_service(ctx_);
    session_.authenticated = true;
  }
  ~Node() { service_->stop(); }

  // Runs one command; aborts on an error reply (a benchmark of errors is no benchmark).
  void run(const std::vector<std::string>& args) {
    std::vector<std::string_view> argv(args.begin(), args.end());
    out_.clear();
    resp::Writer w(&out_, 2);
    service_->execute(session_, argv, w);
    if (!out_.empty() && out_[0] == '-') {
      std::fprintf(stderr, "%s: %s\n", args[0].c_str(), out_.c_str());
      std::exit(1);
    }
  }

 private:
  server::ConfigStore config_;
  server::ServerStats stats_;
  std::unique_ptr<storage::Engine> engine_;
  server::ServerContext ctx_;
  std::unique_ptr<server::Service> service_;
  server::Session session_;
  std::string out_;
};

void fill(Node& node, const std::string& cmd, const std::string& key, size_t n, bool pairs) {
  const size_t batch = 1000;
  for (size_t i = 0; i < n; i += batch) {
    std::vector<std::string> args = {cmd, key};
    for (size_t j = i; j < std::min(n, i + batch); ++j) {
      args.push_back("member:" + std::to_string(j));
      if (pairs) args.push_back("value:" + std::to_string(j));
    }
    node.run(args);
  }
}

template <typename F>
double us_per_op(size_t ops, F&& f) {
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < ops; ++i) f(i);
  auto end = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::micro>(end - start).count() / static_cast<double>(ops);
}

void bench_engine(const std::string& engine, size_t ops) {
  std::printf("\nengine=%s, %zu ops per column, microseconds per command\n", engine.c_str(), ops);
  std::printf("%10s %12s %12s %10s %10s %12s\n", "size", "HSET new", "HSET exist", "HGET", "SADD new",
              "SISMEMBER");
  for (size_t n : {10ul, 1000ul, 100000ul, 1000000ul}) {
    std::unique_ptr<storage::Engine> e;
    std::filesystem::path dir;
    if (engine == "memory") {
      e = storage::open_memory_engine();
    } else {
      dir = std::filesystem::temp_directory_path() /
            ("statekv-collection-bench-" + std::to_string(::getpid()));
      std::filesystem::remove_all(dir);
      storage::RocksDbEngineOptions o;
      o.path = dir.string();
      o.fsync = storage::FsyncPolicy::kNever;
      auto opened = storage::open_rocksdb_engine(o);
      if (!opened.ok()) {
        std::fprintf(stderr, "rocksdb: %s\n", opened.status().to_string().c_str());
        std::exit(1);
      }
      e = std::move(*opened);
    }
    {
      Node node(std::move(e));
      fill(node, "HSET", "h", n, true);
      fill(node, "SADD", "s", n, false);
      const double hset_new = us_per_op(ops, [&](size_t i) {
        node.run({"HSET", "h", "new:" + std::to_string(i), "v"});
      });
      const double hset_exist = us_per_op(ops, [&](size_t i) {
        node.run({"HSET", "h", "member:" + std::to_string(i % n), "changed" + std::to_string(i)});
      });
      const double hget =
          us_per_op(ops, [&](size_t i) { node.run({"HGET", "h", "member:" + std::to_string(i % n)}); });
      const double sadd =
          us_per_op(ops, [&](size_t i) { node.run({"SADD", "s", "new:" + std::to_string(i)}); });
      const double sismember = us_per_op(
          ops, [&](size_t i) { node.run({"SISMEMBER", "s", "member:" + std::to_string(i % n)}); });
      std::printf("%10zu %12.2f %12.2f %10.2f %10.2f %12.2f\n", n, hset_new, hset_exist, hget, sadd,
                  sismember);
    }
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string engine = "both";
  size_t ops = 200000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--engine") == 0) engine = argv[i + 1];
    if (std::strcmp(argv[i], "--ops") == 0) ops = std::stoul(argv[i + 1]);
  }
  if (engine == "memory" || engine == "both") bench_engine("memory", ops);
  if (engine == "rocksdb" || engine == "both") bench_engine("rocksdb", ops);
  return 0;
}
