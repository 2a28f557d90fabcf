#include "support/reply.h"

#include <hiredis/hiredis.h>

#include <cstdio>

namespace statekv::itest {

std::string escape_bytes(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string render(const redisReply& r) {
  switch (r.type) {
    case REDIS_REPLY_STATUS:
      return "+" + std::string(r.str, r.len);
    case REDIS_REPLY_ERROR:
      return "-" + std::string(r.str, r.len);
    case REDIS_REPLY_INTEGER:
      return ":" + std::to_string(r.integer);
    case REDIS_REPLY_STRING:
      return "\"" + escape_bytes(std::string_view(r.str, r.len)) + "\"";
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string out = "[";
      for (size_t i = 0; i < r.elements; ++i) {
        if (i) out += ", ";
        out += render(*r.element[i]);
      }
      return out + "]";
    }
    default:
      return "(unknown hiredis type " + std::to_string(r.type) + ")";
  }
}

std::string render(const resp::Value& v) {
  using T = resp::Value::Type;
  auto list = [&](const char* open, const char* close) {
    std::string out = open;
    for (size_t i = 0; i < v.elements.size(); ++i) {
      if (i) out += ", ";
      out += render(v.elements[i]);
    }
    return out + close;
  };
  switch (v.type) {
    case T::kSimple:
      return "+" + v.str;
    case T::kError:
      return "-" + v.str;
    case T::kInteger:
      return ":" + std::to_string(v.integer);
    case T::kBulk:
      return "\"" + escape_bytes(v.str) + "\"";
    case T::kVerbatim:
      return "=\"" + escape_bytes(v.str) + "\"";
    case T::kNull:
      return "_";
    case T::kArray:
      return list("[", "]");
    case T::kSet:
      return list("~{", "}");
    case T::kPush:
      return list(">[", "]");
    case T::kMap: {
      std::string out = "{";
      for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
        if (i) out += ", ";
        out += render(v.elements[i]) + " => " + render(v.elements[i + 1]);
      }
      return out + "}";
    }
    case T::kDouble:
      return "," + v.str;
    case T::kBoolean:
      return v.integer ? "#t" : "#f";
    case T::kBigNumber:
      return "(big)" + v.str;
  }
  return "(unknown)";
}

}  // namespace statekv::itest
