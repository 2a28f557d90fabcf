#include "server/command_docs.h"

#include <cctype>

#include "server/acl.h"

namespace statekv::server {
namespace {

std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) out.push_back(std::move(cur));
    cur.clear();
  };
  for (char ch : text) {
    if (std::isspace(static_cast<unsigned char>(ch))) {
      flush();
    } else if (ch == '[' || ch == ']' || ch == '(' || ch == ')' || ch == '|') {
      flush();
      out.emplace_back(1, ch);
    } else {
      cur.push_back(ch);
    }
  }
  flush();
  // "]..." tokenizes as "]" then "...".
  return out;
}

class Parser {
 public:
  explicit Parser(std::vector<std::string> toks) : toks_(std::move(toks)) {}

  bool parse(std::vector<DocArg>* out, std::string* error) {
    *out = seq();
    if (!error_.empty() || pos_ != toks_.size()) {
      *error = error_.empty() ? "unexpected '" + toks_[pos_] + "'" : error_;
      return false;
    }
    return true;
  }

 private:
  bool at(std::string_view t) const { return pos_ < toks_.size() && toks_[pos_] == t; }
  bool at_closer() const { return at("]") || at(")") || at("|"); }

  std::vector<DocArg> seq() {
    std::vector<DocArg> args;
    while (pos_ < toks_.size() && !at_closer() && error_.empty()) {
      if (at("[") || at("(")) {
        args.push_back(group());
      } else {
        args.push_back(atom(toks_[pos_++]));
      }
    }
    return args;
  }

  DocArg group() {
    const bool optional = toks_[pos_++] == "[";
    std::string name;
    if (pos_ < toks_.size() && toks_[pos_].size() > 1 && toks_[pos_].back() == ':' &&
        toks_[pos_].find('=') == std::string::npos) {
      name = toks_[pos_].substr(0, toks_[pos_].size() - 1);
      ++pos_;
    }
    std::vector<std::vector<DocArg>> alts;
    alts.push_back(seq());
    while (at("|")) {
      ++pos_;
      alts.push_back(seq());
    }
    if (!(at(optional ? "]" : ")"))) {
      error_ = "unclosed group";
      return {};
    }
    ++pos_;
    DocArg arg;
    if (alts.size() > 1) {
      arg.type = "oneof";
      for (auto& alt : alts) {
        if (alt.size() == 1) {
          arg.args.push_back(std::move(alt[0]));
        } else {
          DocArg block;
          block.type = "block";
          block.name = alt.empty() ? "arg" : alt[0].name;
          block.args = std::move(alt);
          arg.args.push_back(std::move(block));
        }
      }
    } else if (alts[0].size() == 1 && name.empty()) {
      arg = std::move(alts[0][0]);
    } else {
      arg.type = "block";
      arg.args = std::move(alts[0]);
    }
    if (!name.empty()) arg.name = name;
    if (arg.name.empty()) arg.name = "arg";
    arg.optional = arg.optional || optional;
    if (at("...")) {
      ++pos_;
      arg.multiple = true;
    }
    return arg;
  }

  static DocArg atom(std::string_view tok) {
    DocArg arg;
    if (tok.size() > 3 && tok.ends_with("...")) {
      arg.multiple = true;
      tok.remove_suffix(3);
    }
    if (auto eq = tok.find('='); eq != std::string_view::npos) {
      arg.token = std::string(tok.substr(0, eq));
      tok.remove_prefix(eq + 1);
    }
    if (auto colon = tok.find(':'); colon != std::string_view::npos) {
      arg.name = std::string(tok.substr(0, colon));
      arg.type = std::string(tok.substr(colon + 1));
    } else {
      arg.token = std::string(tok);
      arg.name = std::string(tok);
      for (char& ch : arg.name)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      arg.type = "pure-token";
    }
    return arg;
  }

  std::vector<std::string> toks_;
  size_t pos_ = 0;
  std::string error_;
};

void write_arg_list(resp::Writer& out, const std::vector<DocArg>& args) {
  out.array(args.size());
  for (const DocArg& a : args) {
    const bool key = a.type == "key";
    const bool nested = a.type == "oneof" || a.type == "block";
    const size_t flags = static_cast<size_t>(a.optional) + static_cast<size_t>(a.multiple);
    out.map(2 + key + !a.token.empty() + (flags > 0) + nested);
    out.bulk("name");
    out.bulk(a.name);
    out.bulk("type");
    out.bulk(a.type);
    if (key) {
      // Every command here has one key spec (its key range).
      out.bulk("key_spec_index");
      out.integer(0);
    }
    if (!a.token.empty()) {
      out.bulk("token");
      out.bulk(a.token);
    }
    if (flags > 0) {
      out.bulk("flags");
      out.set(flags);
      if (a.optional) out.simple("optional");
      if (a.multiple) out.simple("multiple");
    }
    if (nested) {
      out.bulk("arguments");
      write_arg_list(out, a.args);
    }
  }
}

std::string full_name(const CommandSpec& spec, const CommandSpec* parent) {
  if (parent == nullptr) return std::string(spec.name);
  return std::string(parent->name) + "|" + std::string(spec.name);
}

std::vector<std::string_view> flag_names(uint32_t flags) {
  std::vector<std::string_view> out;
  if (flags & kWrite) out.push_back("write");
  if (flags & kReadonly) out.push_back("readonly");
  if (flags & kDenyOom) out.push_back("denyoom");
  if (flags & kAdmin) out.push_back("admin");
  if (flags & kPubsub) out.push_back("pubsub");
  if (flags & kNoscript) out.push_back("noscript");
  if (flags & kBlocking) out.push_back("blocking");
  if (flags & kLoading) out.push_back("loading");
  if (flags & kStale) out.push_back("stale");
  if (flags & kSkipSlowlog) out.push_back("skip_slowlog");
  if (flags & kSentinel) out.push_back("sentinel");
  if (flags & kNoAuth) out.push_back("no_auth");
  if (flags & kFast) out.push_back("fast");
  if (flags & kNoMulti) out.push_back("no_multi");
  if (flags & kAllowBusy) out.push_back("allow_busy");
  return out;
}

}  // namespace

bool parse_doc_args(std::string_view text, std::vector<DocArg>* out, std::string* error) {
  Parser parser(tokenize(text));
  return parser.parse(out, error);
}

void write_command_info(resp::Writer& out, const CommandSpec& spec, const CommandSpec* parent) {
  out.array(10);
  out.bulk(full_name(spec, parent));
  out.integer(spec.arity);
  auto flags = flag_names(spec.flags);
  if (spec.numkeys_index > 0) flags.push_back("movablekeys");
  out.set(flags.size());
  for (auto f : flags) out.simple(f);
  out.integer(spec.first_key);
  out.integer(spec.last_key);
  out.integer(spec.key_step);
  // The categories ACL rules use (server/acl.h), in Redis's order.
  const uint32_t cats = acl_command_categories(spec, parent);
  std::vector<std::string> names;
  const auto& all = acl_category_names();
  for (size_t i = 0; i < all.size(); ++i) {
    if (cats & acl_category_bit(all[i])) names.push_back("@" + std::string(all[i]));
  }
  out.set(names.size());
  for (const std::string& cat : names) out.simple(cat);
  std::vector<std::string_view> tips;
  for (std::string_view rest = spec.tips; !rest.empty();) {
    const size_t space = rest.find(' ');
    if (space != 0) tips.push_back(rest.substr(0, space));
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
  out.set(tips.size());
  for (auto tip : tips) out.bulk(tip);
  if (spec.first_key == 0) {
    out.array(0);
  } else {
    // One key spec: keys from first_key, through last_key (negative: from the
    // end), every key_step arguments.
    out.array(1);
    out.map(3);
    out.bulk("flags");
    out.set(1);
    out.simple((spec.flags & kWrite) ? "RW" : "RO");
    out.bulk("begin_search");
    out.map(2);
    out.bulk("type");
    out.bulk("index");
    out.bulk("spec");
    out.map(1);
    out.bulk("index");
    out.integer(spec.first_key);
    out.bulk("find_keys");
    out.map(2);
    out.bulk("type");
    out.bulk("range");
    out.bulk("spec");
    out.map(3);
    out.bulk("lastkey");
    out.integer(spec.last_key < 0 ? spec.last_key : spec.last_key - spec.first_key);
    out.bulk("keystep");
    out.integer(spec.key_step);
    out.bulk("limit");
    out.integer(0);
  }
  out.array(spec.subcommands.size());
  for (const CommandSpec& sub : spec.subcommands) write_command_info(out, sub, &spec);
}

void write_command_docs(resp::Writer& out, const CommandSpec& spec, const CommandSpec* parent) {
  std::vector<DocArg> args;
  std::string error;
  // Specs are compiled in and covered by a test that parses every one of them.
  if (!parse_doc_args(spec.args, &args, &error)) args.clear();
  const bool has_args = !args.empty();
  const bool has_subs = !spec.subcommands.empty();
  out.map(4 + has_args + has_subs);
  out.bulk("summary");
  out.bulk(spec.summary);
  out.bulk("since");
  out.bulk(spec.since);
  out.bulk("group");
  out.bulk(parent != nullptr ? parent->group : spec.group);
  out.bulk("complexity");
  out.bulk(spec.complexity);
  if (has_args) {
    out.bulk("arguments");
    write_arg_list(out, args);
  }
  if (has_subs) {
    out.bulk("subcommands");
    out.map(spec.subcommands.size());
    for (const CommandSpec& sub : spec.subcommands) {
      out.bulk(full_name(sub, &spec));
      write_command_docs(out, sub, &spec);
    }
  }
}

}  // namespace statekv::server
