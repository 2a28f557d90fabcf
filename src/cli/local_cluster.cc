#include "cli/local_cluster.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

namespace statekv::cli {

namespace fs = std::filesystem;

std::vector<std::string> LocalCluster::peer_endpoints() const {
  std::vector<std::string> out;
  for (const LocalNode& n : nodes) out.push_back(n.peer_address());
  return out;
}

const LocalNode* LocalCluster::find(NodeId id) const {
  for (const LocalNode& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

std::string refuse_server_arg(const std::string& arg) {
  if (!arg.starts_with("--") || arg.size() < 3) {
    return fmt::format("--server-arg '{}': give one server option as --name or --name=value", arg);
  }
  const std::string name = arg.substr(0, arg.find('='));
  static const std::set<std::string> kSetByUp = {"--bind",
                                                 "--port",
                                                 "--peer-port",
                                                 "--data",
                                                 "--engine",
                                                 "--fsync",
                                                 "--node-id",
                                                 "--region",
                                                 "--peers",
                                                 "--join",
                                                 "--default-partitioner",
                                                 "--default-replication",
                                                 "--logfile",
                                                 "--config",
                                                 "--cluster-secret",
                                                 "--requirepass",
                                                 "--cluster-id"};
  if (kSetByUp.contains(name)) {
    return fmt::format(
        "--server-arg {}: `cluster up` sets {} for every node itself (its own options --engine, "
        "--fsync, --base-port, --partitioner, --replication, --regions, --requirepass and "
        "--secret say what it may be)",
        arg, name);
  }
  return {};
}

Result<LocalCluster> load_local_cluster(const fs::path& data) {
  const fs::path file = data / "cluster.json";
  std::ifstream in(file);
  if (!in) {
    return Status::NotFound("no local cluster under " + data.string() +
                            " (start one with `statekv cluster up`, or give --endpoints)");
  }
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j["nodes"].is_array()) {
    return Status::Corruption(file.string() + " is not a statekv cluster file");
  }
  LocalCluster c;
  c.data = data;
  c.base_port = j.value("base_port", 7001);
  c.engine = j.value("engine", "rocksdb");
  c.fsync = j.value("fsync", "batch");
  c.partitioner = j.value("partitioner", "hash");
  c.replication = j.value("replication", "none");
  if (j.contains("server_args")) {
    if (!j["server_args"].is_array()) {
      return Status::Corruption(file.string() + ": server_args is not a list");
    }
    for (const auto& a : j["server_args"]) {
      if (!a.is_string())
        return Status::Corruption(file.string() + ": a server_args entry is not text");
      c.server_args.push_back(a.get<std::string>());
    }
  }
  for (const auto& n : j["nodes"]) {
    if (!n.is_object() || !n["id"].is_number_unsigned() || !n["port"].is_number_unsigned() ||
        !n["peer_port"].is_number_unsigned()) {
      return Status::Corruption(file.string() + ": a node entry lacks id, port or peer_port");
    }
    LocalNode node;
    node.id = NodeId(n["id"].get<uint64_t>());
    node.port = n["port"].get<uint16_t>();
    node.peer_port = n["peer_port"].get<uint16_t>();
    node.region = n.value("region", "default");
    c.nodes.push_back(node);
  }
  return c;
}

Status save_local_cluster(const LocalCluster& c) {
  nlohmann::json j;
  j["base_port"] = c.base_port;
  j["engine"] = c.engine;
  j["fsync"] = c.fsync;
  j["partitioner"] = c.partitioner;
  j["replication"] = c.replication;
  if (!c.server_args.empty()) j["server_args"] = c.server_args;
  j["nodes"] = nlohmann::json::array();
  for (const LocalNode& n : c.nodes) {
    j["nodes"].push_back(
        {{"id", n.id.value()}, {"port", n.port}, {"peer_port", n.peer_port}, {"region", n.region}});
  }
  const fs::path tmp = c.data / "cluster.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out) return Status::IOError("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, c.data / "cluster.json", ec);
  if (ec) return Status::IOError("cannot write cluster.json: " + ec.message());
  return Status::OK();
}

Result<std::string> cluster_secret(const fs::path& data, const std::string& given, bool create) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("STATEKV_CLUSTER_SECRET"); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  const fs::path file = data / "cluster.secret";
  {
    std::ifstream in(file);
    std::string secret;
    if (in && std::getline(in, secret) && !secret.empty()) return secret;
  }
  if (!create) {
    return Status::NotFound("no cluster secret: give --secret, set STATEKV_CLUSTER_SECRET, or run "
                            "in the data dir `statekv cluster up` made (" + file.string() + ")");
  }
  unsigned char bytes[24];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return Status::Internal("no randomness for a secret");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string secret;
  for (unsigned char b : bytes) {
    secret.push_back(kHex[b >> 4]);
    secret.push_back(kHex[b & 15]);
  }
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot write " + file.string() + ": " + std::strerror(errno));
  const std::string line = secret + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!written) return Status::IOError("cannot write " + file.string());
  return secret;
}

Result<DirLock> DirLock::try_acquire(const fs::path& data, const std::string& name,
                                     const std::string& holder) {
  const fs::path file = data / name;
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot open " + file.string() + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string who;
    char buf[512];
    ssize_t n = ::pread(fd, buf, sizeof buf, 0);
    if (n > 0) who.assign(buf, static_cast<size_t>(n));
    while (!who.empty() && (who.back() == '\n' || who.back() == '\0')) who.pop_back();
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return Status::IOError("cannot lock " + file.string() + ": " + std::strerror(err));
    }
    return Status::Busy(who.empty() ? "another process" : who);
  }
  char when[32] = "";
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  const std::string text =
      holder + " (pid " + std::to_string(::getpid()) + ", since " + when + ")\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    ::close(fd);
    return Status::IOError("cannot write " + file.string());
  }
  return DirLock(fd);
}

DirLock& DirLock::operator=(DirLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

DirLock::~DirLock() {
  release();
}

void DirLock::release() {
  if (fd_ < 0) return;
  // Emptied first: a reader that wins the lock next never sees our name.
  (void)::ftruncate(fd_, 0);
  ::close(fd_);
  fd_ = -1;
}

namespace {

std::string self_executable() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("statekv") : p.string();
}

}  // namespace

unsigned io_threads_per_node(size_t nodes) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return std::max<unsigned>(1, cores / std::max<size_t>(1, nodes));
}

Result<pid_t> spawn_node(const LocalCluster& c, const LocalNode& node, const std::string& secret,
                         bool join, const std::string& requirepass) {
  const fs::path dir = c.node_dir(node.id);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir.string() + ": " + ec.message());
  std::string peers;
  for (const LocalNode& n : c.nodes) {
    if (join && n.id == node.id) continue;
    peers += (peers.empty() ? "" : ",") + std::to_string(n.id.value()) + "=" + n.peer_address();
  }
  std::vector<std::string> args = {self_executable(),
                                   "server",
                                   "--bind",
                                   "127.0.0.1",
                                   "--port",
                                   std::to_string(node.port),
                                   "--peer-port",
                                   std::to_string(node.peer_port),
                                   "--data",
                                   fs::absolute(dir, ec).string(),
                                   "--engine",
                                   c.engine,
                                   "--fsync",
                                   c.fsync,
                                   "--node-id",
                                   std::to_string(node.id.value()),
                                   "--region",
                                   node.region,
                                   "--default-partitioner",
                                   c.partitioner,
                                   "--default-replication",
                                   c.replication,
                                   "--peers",
                                   peers,
                                   "--logfile",
                                   (dir / "statekv.log").string()};
  if (join) args.push_back("--join");
  // The nodes share this machine: each gets its share of the cores for its
  // I/O threads, not one per core (the server's default), which with three
  // nodes on two cores made twice as many threads as cores wake each other
  // on every command (docs/cluster.md, "I/O threads"); unless told otherwise.
  const bool own_io_threads =
      std::any_of(c.server_args.begin(), c.server_args.end(),
                  [](const std::string& a) { return a.substr(0, a.find('=')) == "--io-threads"; });
  if (!own_io_threads) {
    args.push_back("--io-threads");
    args.push_back(std::to_string(io_threads_per_node(c.nodes.size())));
  }
  args.insert(args.end(), c.server_args.begin(), c.server_args.end());
  const pid_t pid = ::fork();
  if (pid < 0) return Status::IOError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setenv("STATEKV_CLUSTER_SECRET", secret.c_str(), 1);
    if (requirepass.empty()) {
      ::unsetenv("STATEKV_REQUIREPASS");
    } else {
      ::setenv("STATEKV_REQUIREPASS", requirepass.c_str(), 1);
    }
    // Its own process group: a Ctrl-C meant for `cluster up` reaches the
    // nodes through `cluster up`'s orderly shutdown, not all at once.
    ::setpgid(0, 0);
    // Detached from our terminal and pipes: a caller waiting for our output
    // (a script, popen) must not wait for the nodes too. What a node prints
    // outside its log (a crash) goes to its log file.
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, STDIN_FILENO);
      ::dup2(devnull, STDOUT_FILENO);
    }
    const std::string log = (dir / "statekv.log").string();
    int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd >= 0) ::dup2(logfd, STDERR_FILENO);
    // Nothing else of ours (pipes a caller waits on) stays open in the node.
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "statekv cluster: cannot run %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  std::ofstream(dir / "pid", std::ios::trunc) << pid << "\n";
  fs::remove(dir / "stopped", ec);
  return pid;
}

namespace {

// The process's state letter from /proc/PID/stat ('Z' zombie, 'X' dead), or 0
// if there is no such process.
char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return 0;
  // "PID (COMM) S ...": COMM may hold spaces and parentheses; the state follows the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return 0;
  return stat[close + 2];
}

// Whether `pid` runs `statekv server` on node K's data dir (its argv names the dir).
bool is_node_process(pid_t pid, const fs::path& dir) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> argv;
  size_t start = 0;
  while (start < cmdline.size()) {
    size_t end = cmdline.find('\0', start);
    if (end == std::string::npos) end = cmdline.size();
    argv.push_back(cmdline.substr(start, end - start));
    start = end + 1;
  }
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] != "--data") continue;
    fs::path given = argv[i + 1];
    std::error_code ec;
    if (given.is_relative()) {
      given = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec) / given;
      if (ec) return false;
    }
    const fs::path a = fs::weakly_canonical(given, ec);
    if (ec) return false;
    const fs::path b = fs::weakly_canonical(fs::absolute(dir, ec), ec);
    return !ec && a == b;
  }
  return false;
}

bool alive(pid_t pid) {
  const char state = process_state(pid);
  return state != 0 && state != 'Z' && state != 'X';
}

// The pid nodeK/pid names (0: none).
pid_t pid_in_file(const LocalCluster& c, NodeId id) {
  std::ifstream in(c.node_dir(id) / "pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  return static_cast<pid_t>(pid);
}

}  // namespace

pid_t running_pid(const LocalCluster& c, NodeId id) {
  const pid_t pid = pid_in_file(c, id);
  if (pid == 0 || !alive(pid)) return 0;
  if (!is_node_process(static_cast<pid_t>(pid), c.node_dir(id))) return 0;
  return static_cast<pid_t>(pid);
}

void wait_while_exiting(const LocalCluster& c, NodeId id, std::chrono::milliseconds limit) {
  const pid_t pid = pid_in_file(c, id);
  if (pid == 0) return;
  const fs::path proc = "/proc/" + std::to_string(pid);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (process_state(pid) == 0) return;  // gone
    if (alive(pid)) {
      std::ifstream cmdline(proc / "cmdline", std::ios::binary);
      if (cmdline.peek() != std::ifstream::traits_type::eof()) return;  // running (its or another's)
    }
    // Exiting: its main thread a zombie or its memory gone. Its files close
    // with its last thread, which may still be in the kernel (a write, an
    // fsync): wait until no thread of it is left but zombies. (A thread's
    // /proc/TID/stat reads as a process's.)
    bool threads_left = false;
    std::error_code ec;
    for (const auto& task : fs::directory_iterator(proc / "task", ec)) {
      const long tid = std::strtol(task.path().filename().c_str(), nullptr, 10);
      if (tid > 0 && alive(static_cast<pid_t>(tid))) threads_left = true;
    }
    if (!threads_left) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Status stop_node(const LocalCluster& c, NodeId id, std::chrono::milliseconds grace,
                 const std::string& reason) {
  const pid_t pid = running_pid(c, id);
  std::error_code ec;
  if (pid == 0) {
    fs::remove(c.node_dir(id) / "pid", ec);
    return Status::OK();
  }
  std::ofstream(c.node_dir(id) / "stopped", std::ios::trunc) << reason << "\n";
  ::kill(pid, SIGTERM);
  ::kill(pid, SIGCONT);  // a stopped process (Ctrl-Z, SIGSTOP) must run to handle it
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    // Our child: reaped here; another's: gone once it is a zombie or absent.
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid || !alive(pid)) {
      fs::remove(c.node_dir(id) / "pid", ec);
      return Status::OK();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 250 && alive(pid); ++i) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  fs::remove(c.node_dir(id) / "pid", ec);
  return Status::OK();
}

std::string planned_stop_reason(const LocalCluster& c, NodeId id) {
  std::ifstream in(c.node_dir(id) / "stopped");
  std::string reason;
  if (in) std::getline(in, reason);
  return reason;
}

std::string log_tail(const LocalCluster& c, NodeId id, size_t lines) {
  std::ifstream in(c.node_dir(id) / "statekv.log");
  // "pid:tid day month year time level message": the level is the sixth word.
  const auto is_error = [](const std::string& l) {
    std::istringstream words(l);
    std::string word;
    for (int i = 0; i < 6; ++i) {
      if (!(words >> word)) return false;
    }
    return word == "error" || word == "critical";
  };
  std::deque<std::string> last;
  std::optional<std::string> dropped_error;  // the last error line out of `last`
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) {
      if (is_error(last.front())) dropped_error = last.front();
      last.pop_front();
    }
  }
  if (dropped_error && std::any_of(last.begin(), last.end(), is_error)) dropped_error.reset();
  std::string out;
  if (dropped_error) out += "  " + *dropped_error + "\n  ...\n";
  for (const std::string& l : last) out += "  " + l + "\n";
  return out;
}

}  // namespace statekv::cli
