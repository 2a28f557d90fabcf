#include "check/history.h"

#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

#include "check/operation.h"
#include "check/test_histories.h"

namespace statekv::check {
namespace {

TEST(HistoryTest, RoundTripsEveryField) {
  History h;
  Event e;
  e.process = 3;
  e.type = EventType::kOk;
  e.f = OpFunction::kCas;
  e.key = "k\"7";
  e.cas_expected = std::nullopt;
  e.value = "v42";
  e.time = 1950;
  e.node = 2;
  e.session = "final";
  e.level = "linearizable";
  h.push_back(e);
  e.f = OpFunction::kRead;
  e.value = std::nullopt;
  e.node = -1;
  e.session.clear();
  e.level.clear();
  h.push_back(e);
  std::stringstream s;
  write_history(s, h);
  EXPECT_EQ(to_json_line(h[0]),
            R"({"process":3,"type":"ok","f":"cas","key":"k\"7","value":[null,"v42"],)"
            R"("time":1950,"node":2,"session":"final","level":"linearizable"})");
  auto back = read_history(s);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ(to_json_line((*back)[0]), to_json_line(h[0]));
  EXPECT_EQ(to_json_line((*back)[1]), to_json_line(h[1]));
  EXPECT_FALSE((*back)[1].value.has_value());
  EXPECT_EQ((*back)[0].node, 2);
}

TEST(HistoryTest, ParsesTheDesignExample) {
  std::istringstream in(
      R"({"process":3,"type":"invoke","f":"write","key":"k7","value":"v42","time":1200})"
      "\n\n"
      R"({"process":3,"type":"ok","f":"write","key":"k7","value":"v42","time":1950})"
      "\n");
  auto h = read_history(in);
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[1].type, EventType::kOk);
  EXPECT_EQ((*h)[1].value, "v42");
  EXPECT_EQ((*h)[0].node, -1);
}

void expect_error(const std::string& text, const std::string& prefix, const std::string& what) {
  std::istringstream in(text);
  auto h = read_history(in);
  ASSERT_FALSE(h.ok()) << text;
  EXPECT_EQ(h.status().message().rfind(prefix, 0), 0u) << h.status().message();
  EXPECT_NE(h.status().message().find(what), std::string::npos) << h.status().message();
}

TEST(HistoryTest, RejectsBadLinesWithTheirNumber) {
  const std::string good =
      R"({"process":1,"type":"invoke","f":"read","key":"k","value":null,"time":1})"
      "\n";
  expect_error(good + R"({"process":1,"type":"done","f":"read","key":"k","time":2})",
               "line 2: ", "unknown type \"done\"");
  expect_error(good + "\n" + R"({"process":1,"type":"ok","f":"incr","key":"k","time":2})",
               "line 3: ", "unknown f \"incr\"");
  expect_error(R"({"process":1,"type":"ok","f":"cas","key":"k","value":"x","time":2})",
               "line 1: ", "[expected, new]");
  expect_error(R"({"process":"1","type":"ok","f":"read","key":"k","time":2})",
               "line 1: ", "\"process\" must be an integer");
  expect_error(R"({"process":1,"type":"ok","f":"read","key":"k"})",
               "line 1: ", "missing field \"time\"");
  expect_error(R"({"process":1,"type":"ok","f":"write","key":"k","value":5,"time":2})",
               "line 1: ", "string or null");
  expect_error("{not json", "line 1: ", "not valid JSON");
}

TEST(HistoryTest, PairsOperationsAndRejectsInconsistentHistories) {
  testing::HistoryBuilder b;
  b.write(1, "k", "a", 0, 10).read(2, "k", "a", 5, 20).write(1, "k", "b", 30, 40, EventType::kInfo);
  auto ops = pair_operations(b.history());
  ASSERT_TRUE(ops.ok());
  ASSERT_EQ(ops->size(), 3u);
  EXPECT_EQ((*ops)[1].value, "a");
  EXPECT_EQ((*ops)[2].complete_time, kNever);
  EXPECT_EQ((*ops)[2].session_index, 1u);

  History dangling = {b.history()[1]};
  EXPECT_FALSE(pair_operations(dangling).ok());
  History twice = {b.history()[0], b.history()[0]};
  auto r = pair_operations(twice);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("event 2"), std::string::npos);
}

TEST(HistoryTest, ReadsOneHundredThousandLinesQuickly) {
  testing::GenOptions o;
  o.processes = 20;
  o.keys = 1000;
  o.ops = 50'000;
  Random rng(7);
  History h = testing::generate_linearizable(o, rng);
  std::stringstream s;
  write_history(s, h);
  auto start = std::chrono::steady_clock::now();
  auto back = read_history(s);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->size(), 100'000u);
  std::printf("read 100000 lines in %.3f s\n", seconds);
  EXPECT_LT(seconds, 1.0);
}

}  // namespace
}  // namespace statekv::check
