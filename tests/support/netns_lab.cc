#include "support/netns_lab.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>

#include "support/redis_client.h"
#include "support/server_process.h"

namespace statekv::itest {

Status run_shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return Status::IOError("popen failed: " + command);
  std::array<char, 512> buf{};
  while (std::fgets(buf.data(), buf.size(), p) != nullptr) out += buf.data();
  const int rc = ::pclose(p);
  if (rc != 0) return Status::Unavailable("`" + command + "` failed: " + out);
  return Status::OK();
}

namespace {
std::atomic<int> next_lab{0};
}

std::string NetnsLab::subnet() const {
  const int unique = (::getpid() % 1000) * 8 + lab_ % 8;
  return "10." + std::to_string(200 + unique / 256 % 50) + "." + std::to_string(unique % 256);
}

std::string NetnsLab::ip(int node) const {
  return subnet() + "." + std::to_string(node);
}

std::string NetnsLab::netns(int node) const {
  return "skv" + std::to_string(::getpid() % 100000) + "_" + std::to_string(lab_) + "n" +
         std::to_string(node);
}

Result<std::unique_ptr<NetnsLab>> NetnsLab::create(int nodes) {
  if (::geteuid() != 0) return Status::Unavailable("network namespaces need root");
  if (Status s = run_shell("command -v ip && command -v nft"); !s.ok()) {
    return Status::Unavailable("`ip` and `nft` (nftables) are needed: " + s.message());
  }
  std::unique_ptr<NetnsLab> lab(new NetnsLab(next_lab++, nodes));
  const std::string tag = std::to_string(::getpid() % 100000) + "_" + std::to_string(lab->lab_);
  const std::string bridge = "skb" + tag;
  if (Status s =
          run_shell("ip link add " + bridge + " type bridge && ip addr add " + lab->subnet() +
                    ".254/24 dev " + bridge + " && ip link set " + bridge + " up");
      !s.ok()) {
    run_shell("ip link del " + bridge);
    return Status::Unavailable("cannot make a bridge: " + s.message());
  }
  lab->bridge_made_ = true;
  for (int k = 1; k <= nodes; ++k) {
    const std::string ns = lab->netns(k);
    const std::string veth = "skv" + tag + "v" + std::to_string(k);
    const std::string peer = "skp" + tag + "v" + std::to_string(k);
    Status s = run_shell("ip netns add " + ns);
    if (!s.ok()) return Status::Unavailable("cannot make a network namespace: " + s.message());
    lab->namespaces_made_.push_back(k);
    s = run_shell("ip link add " + veth + " type veth peer name " + peer + " && ip link set " +
                  veth + " netns " + ns + " && ip link set " + peer + " master " + bridge +
                  " && ip link set " + peer + " up && ip netns exec " + ns + " ip addr add " +
                  lab->ip(k) + "/24 dev " + veth + " && ip netns exec " + ns + " ip link set " +
                  veth + " up && ip netns exec " + ns + " ip link set lo up && ip netns exec " +
                  ns + " nft add table inet skv && ip netns exec " + ns +
                  " nft add chain inet skv input '{ type filter hook input priority 0; }'");
    if (!s.ok()) return Status::Unavailable("cannot wire namespace " + ns + ": " + s.message());
  }
  return lab;
}

NetnsLab::~NetnsLab() {
  for (int k : namespaces_made_) run_shell("ip netns del " + netns(k));
  if (bridge_made_) {
    run_shell("ip link del skb" + std::to_string(::getpid() % 100000) + "_" + std::to_string(lab_));
  }
}

Result<pid_t> NetnsLab::spawn(int node, const std::vector<std::string>& argv,
                              const std::string& log_path) {
  std::vector<std::string> full = {"ip", "netns", "exec", netns(node)};
  full.insert(full.end(), argv.begin(), argv.end());
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Status::IOError("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> args;
    for (std::string& a : full) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

Result<pid_t> NetnsLab::spawn_statekv(int node, const std::string& data_dir,
                                      const std::string& engine, const std::string& secret,
                                      const std::string& log_path) {
  std::string peers;
  for (int k = 1; k <= nodes_; ++k) {
    peers += (k > 1 ? "," : "") + std::to_string(k) + "=" + ip(k) + ":17001";
  }
  return spawn(node,
               {statekv_binary(), "server", "--bind", ip(node), "--port",
                std::to_string(resp_port_), "--node-id", std::to_string(node), "--peers", peers,
                "--cluster-secret", secret, "--data", data_dir, "--engine", engine},
               log_path);
}

Status NetnsLab::drop(int from, int to) {
  return run_shell("ip netns exec " + netns(to) + " nft add rule inet skv input ip saddr " +
                   ip(from) + " drop");
}

Status NetnsLab::isolate(int a, const std::vector<int>& others) {
  for (int b : others) {
    if (Status s = drop(a, b); !s.ok()) return s;
    if (Status s = drop(b, a); !s.ok()) return s;
  }
  return Status::OK();
}

Status NetnsLab::heal() {
  for (int k = 1; k <= nodes_; ++k) {
    if (Status s = run_shell("ip netns exec " + netns(k) + " nft flush chain inet skv input");
        !s.ok()) {
      return s;
    }
  }
  return Status::OK();
}

std::string NetnsLab::cmd(int node, const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout) {
  auto c = RedisClient::connect(ip(node), resp_port_, timeout);
  if (!c.ok()) return "<connect: " + c.status().message() + ">";
  return c->cmd(args);
}

::testing::AssertionResult NetnsLab::eventually(int node, const std::vector<std::string>& args,
                                                const std::string& want,
                                                std::chrono::seconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::string last;
  while (std::chrono::steady_clock::now() < until) {
    last = cmd(node, args, std::chrono::seconds(1));
    if (last == want) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ::testing::AssertionFailure() << "through node " << node << " the last reply was " << last;
}

}  // namespace statekv::itest
