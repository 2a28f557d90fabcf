// The document: enum names, byte round trip and determinism, and every way
// decode() refuses a document.
#include "meta/cluster_map.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "meta/transitions.h"

namespace statekv::meta {
namespace {

using Json = nlohmann::json;

Member member(uint64_t id, std::string region = "default") {
  Member m;
  m.id = NodeId(id);
  m.address = fmt::format("10.0.0.{}:6379", id);
  m.peer_address = fmt::format("10.0.0.{}:7000", id);
  m.region = std::move(region);
  return m;
}

KeyspaceSpec spec(std::string name, std::string prefix) {
  KeyspaceSpec s;
  s.name = std::move(name);
  s.key_prefix = std::move(prefix);
  return s;
}

// A map with one keyspace of every partitioner kind and several replications.
ClusterMap sample() {
  Result<ClusterMap> m =
      bootstrap("c1", {member(1, "eu"), member(2, "eu"), member(3, "us"), member(4, "us")});
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  ClusterMap map = *m;

  KeyspaceSpec range = spec("orders", "order:");
  range.partitioner.kind = Partitioner::kRange;
  range.partitioner.shards = 3;
  range.partitioner.split_points = {"order:g", "order:p"};
  range.replication.kind = Replication::kChain;
  range.replication.factor = 2;
  KeyspaceSpec ring = spec("sessions", "sess:");
  ring.partitioner.kind = Partitioner::kRing;
  ring.partitioner.shards = 4;
  ring.partitioner.vnodes = 64;
  ring.replication.kind = Replication::kQuorum;
  ring.replication.read_quorum = 2;
  ring.replication.write_quorum = 2;
  ring.consistency = Consistency::kCausal;
  ring.partition_mode = PartitionMode::kAvailability;
  KeyspaceSpec slots = spec("cache", "cache:");
  slots.partitioner.kind = Partitioner::kSlots;
  slots.partitioner.shards = 2;
  slots.replication.kind = Replication::kPrimaryBackupAsync;
  slots.replication.factor = 2;
  slots.consistency = Consistency::kEventual;
  KeyspaceSpec geo = spec("users", "user:");
  geo.partitioner.kind = Partitioner::kGeo;
  geo.partitioner.shards = 2;
  geo.partitioner.geo_rules = {{"user:eu:", "eu"}, {"", "us"}};
  geo.replication.factor = 2;
  for (KeyspaceSpec& spec : {std::ref(range), std::ref(ring), std::ref(slots), std::ref(geo)}) {
    Result<ClusterMap> next = create_keyspace(map, spec);
    EXPECT_TRUE(next.ok()) << next.status().to_string();
    map = *next;
  }
  map.recent_changes = {{Epoch(4), "w/1"}, {Epoch(5), "w/2"}};
  return map;
}

TEST(EnumNames, EveryValueRoundTripsByName) {
  for (auto v : {MemberState::kJoining, MemberState::kActive, MemberState::kLeaving,
                 MemberState::kRemoved}) {
    EXPECT_EQ(*parse_member_state(to_string(v)), v);
  }
  for (auto v : {Partitioner::kRange, Partitioner::kHash, Partitioner::kRing, Partitioner::kSlots,
                 Partitioner::kGeo}) {
    EXPECT_EQ(*parse_partitioner(to_string(v)), v);
  }
  for (auto v : {Replication::kNone, Replication::kPrimaryBackupAsync,
                 Replication::kPrimaryBackupSync, Replication::kMultiPrimary, Replication::kChain,
                 Replication::kQuorum, Replication::kConsensus}) {
    EXPECT_EQ(*parse_replication(to_string(v)), v);
  }
  for (auto v : {Consistency::kLinearizable, Consistency::kSequential, Consistency::kCausal,
                 Consistency::kFifo, Consistency::kEventual}) {
    EXPECT_EQ(*parse_consistency(to_string(v)), v);
  }
  for (auto v : {PartitionMode::kConsistency, PartitionMode::kAvailability}) {
    EXPECT_EQ(*parse_partition_mode(to_string(v)), v);
  }
}

TEST(EnumNames, NamesUsersType) {
  EXPECT_EQ(*parse_partitioner("ring"), Partitioner::kRing);
  EXPECT_EQ(*parse_replication("consensus"), Replication::kConsensus);
  EXPECT_EQ(*parse_replication("raft"), Replication::kConsensus);
  EXPECT_EQ(to_string(Replication::kConsensus), "consensus");
  EXPECT_EQ(*parse_replication("primary-backup-sync"), Replication::kPrimaryBackupSync);
  EXPECT_EQ(*parse_consistency("linearizable"), Consistency::kLinearizable);
  EXPECT_EQ(*parse_partition_mode("availability"), PartitionMode::kAvailability);
  EXPECT_EQ(*parse_partition_mode("cp"), PartitionMode::kConsistency);
  EXPECT_EQ(*parse_partition_mode("ap"), PartitionMode::kAvailability);
  EXPECT_EQ(*parse_member_state("leaving"), MemberState::kLeaving);
}

TEST(EnumNames, UnknownNameListsTheAcceptedOnes) {
  Result<Replication> r = parse_replication("paxos");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_invalid_argument());
  EXPECT_EQ(r.status().message(),
            "unknown replication 'paxos' (expected one of: none, primary-backup-async, "
            "primary-backup-sync, multi-primary, chain, quorum, consensus)");
  EXPECT_FALSE(parse_consistency("Linearizable").ok()) << "names are case-sensitive";
  EXPECT_FALSE(parse_partitioner("").ok());
  EXPECT_FALSE(parse_member_state("gone").ok());
  EXPECT_NE(parse_partition_mode("both").status().message().find("consistency, availability"),
            std::string::npos);
}

TEST(Document, SampleIsValid) {
  const ClusterMap m = sample();
  EXPECT_TRUE(validate(m).ok()) << validate(m).to_string();
  EXPECT_EQ(m.keyspaces.size(), 5u);
  EXPECT_EQ(m.epoch, Epoch(5));
  // geo: 2 regions x 2 shards, each shard owned inside its region.
  const Keyspace* users = m.find_keyspace("users");
  ASSERT_NE(users, nullptr);
  ASSERT_EQ(users->shards.size(), 4u);
  EXPECT_EQ(users->shards[0].owners, (std::vector<NodeId>{NodeId(1), NodeId(2)}));
  EXPECT_EQ(users->shards[2].owners, (std::vector<NodeId>{NodeId(3), NodeId(4)}));
  EXPECT_EQ(shard_region(users->spec.partitioner, 3), "us");
}

TEST(Document, RoundTrip) {
  const ClusterMap m = sample();
  const std::string bytes = encode(m);
  Result<ClusterMap> back = decode(bytes);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, m);
  EXPECT_EQ(encode(*back), bytes);
}

TEST(Document, SameMapSameBytes) {
  EXPECT_EQ(encode(sample()), encode(sample()));
  // Field order in the text does not matter to decode, and encode gives one form.
  Json j = Json::parse(encode(sample()));
  std::string reordered = "{";
  for (auto it = j.rbegin(); it != j.rend(); ++it) {
    if (reordered.size() > 1) reordered += ", ";
    reordered += Json(it.key()).dump() + " : " + it.value().dump(2);
  }
  reordered += "}";
  Result<ClusterMap> back = decode(reordered);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(encode(*back), encode(sample()));
}

TEST(Document, DifferentMapsDifferentBytes) {
  ClusterMap a = sample(), b = sample();
  b.recent_changes.back().change_id = "w/3";
  EXPECT_NE(encode(a), encode(b));
  b = a;
  b.members[0].voter = false;
  EXPECT_NE(encode(a), encode(b));
}

TEST(Document, CarriesItsFormatVersion) {
  Json j = Json::parse(encode(sample()));
  EXPECT_EQ(j["format"], kFormatVersion);
  j["format"] = kFormatVersion + 1;
  Result<ClusterMap> r = decode(j.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_corruption());
  EXPECT_NE(r.status().message().find("format version 2 is not supported"), std::string::npos)
      << r.status().message();
}

// ---- decode refuses ---------------------------------------------------------------

void expect_corrupt(std::string_view bytes, std::string_view needle) {
  Result<ClusterMap> r = decode(bytes);
  ASSERT_FALSE(r.ok()) << "decoded: " << bytes;
  EXPECT_TRUE(r.status().is_corruption()) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos)
      << "wanted '" << needle << "' in: " << r.status().message();
}

void expect_corrupt(const ClusterMap& m, std::string_view needle) {
  expect_corrupt(encode(m), needle);
}

TEST(Decode, RefusesWhatIsNotAnObjectOfJson) {
  expect_corrupt("", "not valid JSON");
  expect_corrupt("{\"format\":1,", "not valid JSON");
  expect_corrupt("[1,2]", "must be an object");
  expect_corrupt("\"meta\"", "must be an object");
}

// Visits every object in the document with a way to reach it again.
void for_each_object(Json& j, const std::function<void(Json&)>& f) {
  if (j.is_object()) {
    f(j);
    for (auto& [k, v] : j.items()) for_each_object(v, f);
  } else if (j.is_array()) {
    for (Json& v : j) for_each_object(v, f);
  }
}

TEST(Decode, RefusesEveryMissingField) {
  const Json doc = Json::parse(encode(sample()));
  // Count the (object, field) pairs, then drop each one in turn.
  size_t total = 0;
  Json counter = doc;
  for_each_object(counter, [&](Json& o) { total += o.size(); });
  ASSERT_GT(total, 40u);
  for (size_t n = 0; n < total; ++n) {
    Json j = doc;
    size_t seen = 0;
    std::string dropped;
    for_each_object(j, [&](Json& o) {
      if (!dropped.empty()) return;
      if (n < seen + o.size()) {
        auto it = o.begin();
        std::advance(it, n - seen);
        dropped = it.key();
        o.erase(it);
      }
      seen += o.size();
    });
    ASSERT_FALSE(dropped.empty());
    SCOPED_TRACE(dropped);
    if (dropped == "config_epoch") {
      // Optional: a map written before configuration epochs has none (0).
      EXPECT_TRUE(decode(j.dump()).ok());
      continue;
    }
    expect_corrupt(j.dump(), fmt::format("missing field \"{}\"", dropped));
  }
}

TEST(Decode, RefusesAnUnknownFieldAnywhere) {
  const Json doc = Json::parse(encode(sample()));
  Json counter = doc;
  size_t objects = 0;
  for_each_object(counter, [&](Json&) { ++objects; });
  for (size_t n = 0; n < objects; ++n) {
    Json j = doc;
    size_t i = 0;
    for_each_object(j, [&](Json& o) {
      if (i++ == n) o["surprise"] = 1;
    });
    expect_corrupt(j.dump(), "unknown field \"surprise\"");
  }
}

TEST(Decode, RefusesWrongTypes) {
  Json j = Json::parse(encode(sample()));
  j["epoch"] = -3;
  expect_corrupt(j.dump(), "document.epoch must be an integer");
  j = Json::parse(encode(sample()));
  j["epoch"] = 2.5;
  expect_corrupt(j.dump(), "document.epoch must be an integer");
  j = Json::parse(encode(sample()));
  j["members"][0]["voter"] = "yes";
  expect_corrupt(j.dump(), "members[0].voter must be true or false");
  j = Json::parse(encode(sample()));
  j["keyspaces"][1]["shards"][0]["owners"][0] = "n1";
  expect_corrupt(j.dump(), "keyspaces[1].shards[0].owners must hold node ids");
  j = Json::parse(encode(sample()));
  j["keyspaces"][0]["partitioner"]["shards"] = 1ULL << 40;
  expect_corrupt(j.dump(), "keyspaces[0].partitioner.shards must be an integer in 0..4294967295");
  j = Json::parse(encode(sample()));
  j["keyspaces"] = Json::object();
  expect_corrupt(j.dump(), "document.keyspaces must be an array");
}

TEST(Decode, RefusesUnknownEnumNames) {
  Json j = Json::parse(encode(sample()));
  j["keyspaces"][0]["replication"]["kind"] = "paxos";
  expect_corrupt(j.dump(), "keyspaces[0].replication.kind: unknown replication 'paxos'");
  j = Json::parse(encode(sample()));
  j["keyspaces"][2]["partitioner"]["kind"] = "modulo";
  expect_corrupt(j.dump(), "unknown partitioner 'modulo'");
  j = Json::parse(encode(sample()));
  j["keyspaces"][0]["consistency"] = "strong";
  expect_corrupt(j.dump(), "unknown consistency 'strong'");
  j = Json::parse(encode(sample()));
  j["keyspaces"][0]["partition_mode"] = "both";
  expect_corrupt(j.dump(), "unknown partition mode 'both'");
  j = Json::parse(encode(sample()));
  j["members"][2]["state"] = "gone";
  expect_corrupt(j.dump(), "members[2].state: unknown member state 'gone'");
}

TEST(Decode, RefusesDuplicates) {
  ClusterMap m = sample();
  m.members[1].id = m.members[0].id;
  expect_corrupt(m, "node 1 is listed twice");
  m = sample();
  m.keyspaces[2].spec.name = "orders";
  expect_corrupt(m, "keyspace 'orders' is listed twice");
  m = sample();
  m.members[1].address = m.members[0].address;
  expect_corrupt(m, "node 2: address 10.0.0.1:6379 is already used by another member");
  m = sample();
  m.members[3].peer_address = m.members[2].peer_address;
  expect_corrupt(m, "peer address 10.0.0.3:7000 is already used");
  m = sample();
  m.keyspaces[1].shards[0].owners = {NodeId(2), NodeId(2)};
  expect_corrupt(m, "keyspace 'orders': shard 0 lists node 2 twice");
  m = sample();
  m.keyspaces[4].spec.partitioner.geo_rules.push_back({"user:eu:", "us"});
  expect_corrupt(m, "two geo rules for prefix 'user:eu:'");
}

TEST(Decode, RefusesBrokenMemberInvariants) {
  ClusterMap m = sample();
  m.members[0].id = NodeId(0);
  expect_corrupt(m, "node id 0 is not a valid member id");
  m = sample();
  m.members[0].address = "10.0.0.1";
  expect_corrupt(m, "node 1: address '10.0.0.1' must be host:port");
  m = sample();
  m.members[0].peer_address = "h:70000";
  expect_corrupt(m, "peer address 'h:70000' must be host:port with a port in 1..65535");
  m = sample();
  m.members[0].region = "eu west";
  expect_corrupt(m, "region 'eu west' must be 1..64 characters");
  m = sample();
  for (Member& x : m.members) x.voter = false;
  expect_corrupt(m, "the cluster needs at least one voter");
  m = sample();
  m.members.push_back(member(9));
  m.members.back().state = MemberState::kRemoved;
  expect_corrupt(m, "a removed member cannot be a voter");
}

TEST(Decode, RefusesBrokenClusterInvariants) {
  ClusterMap m = sample();
  m.epoch = Epoch(0);
  m.recent_changes.clear();
  expect_corrupt(m, "epoch must be at least 1");
  m = sample();
  m.cluster_id = "";
  expect_corrupt(m, "cluster id '' must be 1..64 characters");
  m = sample();
  m.last_change = "two\nlines";
  expect_corrupt(m, "last_change must be one line");
  m = sample();
  m.keyspaces.erase(m.keyspaces.begin());
  expect_corrupt(m, "there is no 'default' keyspace");
  m = sample();
  m.recent_changes = {{Epoch(5), "a"}, {Epoch(4), "b"}};
  expect_corrupt(m, "strictly increasing epochs");
  m = sample();
  m.recent_changes = {{Epoch(6), "a"}};
  expect_corrupt(m, "up to the current one");
  m = sample();
  m.recent_changes = {{Epoch(5), ""}};
  expect_corrupt(m, "non-empty ids");
  m = sample();
  m.recent_changes.clear();
  for (uint64_t e = 1; e <= kMaxRecentChanges + 1; ++e) m.recent_changes.push_back({Epoch(e), "x"});
  m.epoch = Epoch(kMaxRecentChanges + 1);
  expect_corrupt(m, "more than 16 recent change stamps");
}

TEST(Decode, RefusesBrokenKeyspaceInvariants) {
  struct Case {
    std::function<void(ClusterMap&)> edit;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {[](ClusterMap& m) { m.keyspaces[0].spec.key_prefix = "x"; },
       "keyspace 'default': the default keyspace has the empty key prefix"},
      {[](ClusterMap& m) { m.keyspaces[1].spec.key_prefix = ""; },
       "keyspace 'orders': needs a non-empty key prefix"},
      {[](ClusterMap& m) { m.keyspaces[2].spec.key_prefix = "order:"; },
       "keyspace 'orders' has the same prefix 'order:' as keyspace 'sessions': a key could "
       "belong to both"},
      {[](ClusterMap& m) { m.keyspaces[1].spec.name = "bad name"; },
       "keyspace name 'bad name' must be 1..64 characters"},
      {[](ClusterMap& m) {
         m.keyspaces[1].spec.partitioner.split_points = {"order:p", "order:g"};
       },
       "split points must be strictly increasing ('order:p' then 'order:g')"},
      {[](ClusterMap& m) { m.keyspaces[1].spec.partitioner.split_points.pop_back(); },
       "range partitioning into 3 shards needs 2 split points, got 1"},
      {[](ClusterMap& m) { m.keyspaces[2].spec.partitioner.split_points = {"a"}; },
       "split points apply to range and slots partitioning only"},
      {[](ClusterMap& m) { m.keyspaces[1].spec.partitioner.ring_nodes = {NodeId(1)}; },
       "ring nodes apply to ring partitioning only"},
      {[](ClusterMap& m) { m.keyspaces[2].spec.partitioner.ring_nodes = {NodeId(1)}; },
       "ring nodes are recorded for REPLICATION consensus only"},
      {[](ClusterMap& m) {
         m.keyspaces[2].spec.replication = ReplicationSpec{Replication::kConsensus, 3};
         m.keyspaces[2].spec.partitioner.ring_nodes = {NodeId(2), NodeId(1)};
       },
       "ring nodes must be node ids in rising order"},
      {[](ClusterMap& m) { m.keyspaces[2].spec.partitioner.shards = 0; }, "needs at least 1 shard"},
      {[](ClusterMap& m) { m.keyspaces[3].spec.partitioner.shards = kSlotCount + 1; },
       "at most 16384 shards"},
      {[](ClusterMap& m) { m.keyspaces[2].spec.partitioner.vnodes = 0; },
       "vnodes must be in 1..65536"},
      {[](ClusterMap& m) { m.keyspaces[4].spec.partitioner.geo_rules.pop_back(); },
       "needs a rule for the empty prefix"},
      {[](ClusterMap& m) { m.keyspaces[4].spec.partitioner.inner = Partitioner::kGeo; },
       "geo cannot partition inside a region"},
      {[](ClusterMap& m) { m.keyspaces[2].spec.partitioner.inner = Partitioner::kRange; },
       "an inner partitioner applies to geo partitioning only"},
      {[](ClusterMap& m) {
         m.keyspaces[2].spec.partitioner.geo_rules = {{"", "eu"}};
       },
       "region rules apply to geo partitioning only"},
      {[](ClusterMap& m) { m.keyspaces[4].shards[0].owners = {NodeId(3)}; },
       "keyspace 'users': shard 0 belongs to region 'eu' but node 3 is in region 'us'"},
      {[](ClusterMap& m) { m.keyspaces[1].shards.pop_back(); },
       "keyspace 'orders': the partitioner asks for 3 shards, the shard map has 2"},
      {[](ClusterMap& m) { std::swap(m.keyspaces[1].shards[0], m.keyspaces[1].shards[1]); },
       "shard at position 0 has id 1"},
      {[](ClusterMap& m) { m.keyspaces[1].shards[0].owners.clear(); }, "shard 0 has no owner"},
      {[](ClusterMap& m) {
         m.keyspaces[1].shards[0].owners = {NodeId(1), NodeId(2), NodeId(3)};
       },
       "shard 0 has 3 owners, more than the replication factor 2"},
      {[](ClusterMap& m) { m.keyspaces[1].shards[0].owners = {NodeId(7)}; },
       "shard 0 is owned by node 7, which is not a member"},
      {[](ClusterMap& m) { m.keyspaces[1].spec.replication.factor = 0; },
       "replication factor must be in 1..64"},
      {[](ClusterMap& m) { m.keyspaces[1].spec.replication.kind = Replication::kNone; },
       "replication 'none' keeps one copy: factor must be 1"},
      {[](ClusterMap& m) { m.keyspaces[2].spec.replication.read_quorum = 4; },
       "quorum replication needs R and W in 1..3 (got R=4 W=2)"},
      {[](ClusterMap& m) { m.keyspaces[1].spec.replication.read_quorum = 1; },
       "read/write quorum sizes apply to quorum replication only"},
      {[](ClusterMap& m) { m.keyspaces[1].spec.partition_mode = PartitionMode::kAvailability; },
       "linearizable consistency needs partition mode 'consistency'"},
      {[](ClusterMap& m) { m.keyspaces[3].spec.consistency = Consistency::kSequential; },
       "primary-backup-async replication cannot serve sequential consistency"},
      {[](ClusterMap& m) {
         m.keyspaces[2].spec.consistency = Consistency::kLinearizable;
         m.keyspaces[2].spec.partition_mode = PartitionMode::kConsistency;
         m.keyspaces[2].spec.replication.read_quorum = 1;
       },
       "linearizable consistency over quorum replication needs R + W > N"},
  };
  for (const Case& c : cases) {
    ClusterMap m = sample();
    c.edit(m);
    SCOPED_TRACE(c.needle);
    expect_corrupt(m, c.needle);
  }
}

TEST(Validate, GeoLayoutsListEachRegionsSplitPointsInTurn) {
  // keyspaces[4] is geo over regions eu and us, 2 shards each.
  const auto with = [](Partitioner inner, std::vector<uint32_t> region_shards,
                       std::vector<std::string> splits) {
    ClusterMap m = sample();
    PartitionerSpec& p = m.keyspaces[4].spec.partitioner;
    p.inner = inner;
    p.region_shards = std::move(region_shards);
    p.split_points = std::move(splits);
    return m;
  };
  const auto expect_valid = [](const ClusterMap& m) {
    EXPECT_TRUE(validate(m).ok()) << validate(m).to_string();
    Result<ClusterMap> decoded = decode(encode(m));
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    EXPECT_EQ(*decoded, m);
  };
  // Placed: range, each region's shards - 1 splits; each region starts over.
  expect_valid(with(Partitioner::kRange, {2, 2}, {"user:eu:m", "user:m"}));
  expect_valid(with(Partitioner::kRange, {2, 2}, {"user:eu:m", "a"}));
  // Placed: slots, one start slot per shard, each region from slot 0.
  expect_valid(with(Partitioner::kSlots, {2, 2}, {"0", "8192", "0", "100"}));
  // Hash and ring record no split points; neither does an unplaced slots one.
  expect_valid(with(Partitioner::kRing, {2, 2}, {}));
  expect_valid(with(Partitioner::kSlots, {}, {}));
  // Not placed yet: range's split points are the same for every region.
  ClusterMap unplaced = with(Partitioner::kRange, {}, {"m"});
  expect_valid(unplaced);
  unplaced.keyspaces[4].spec.partitioner.split_points = {"m", "n"};
  expect_corrupt(unplaced, "range partitioning into 2 shards needs 1 split points, got 2");

  expect_corrupt(with(Partitioner::kRange, {2, 2}, {"user:eu:m"}),
                 "keyspace 'users': a geo keyspace over range records each region's split "
                 "points (its shards - 1) one region after the other: its region_shards need 2, "
                 "got 1");
  expect_corrupt(with(Partitioner::kRange, {2, 2}, {"user:eu:m", ""}),
                 "keyspace 'users': region 'us': a split point cannot be the empty key");
  expect_corrupt(with(Partitioner::kRange, {3, 1}, {"user:eu:m", "user:eu:a"}),
                 "region 'eu': split points must be strictly increasing ('user:eu:m' then "
                 "'user:eu:a')");
  expect_corrupt(with(Partitioner::kSlots, {2, 2}, {"0", "8192", "1", "100"}),
                 "region 'us': start slot '1' at position 0 is not a slot above the previous one "
                 "(the first must be 0)");
  expect_corrupt(with(Partitioner::kSlots, {2, 2}, {"0", "0", "0", "100"}),
                 "region 'eu': start slot '0' at position 1");
  expect_corrupt(with(Partitioner::kSlots, {2, 2}, {"0", "8192", "0", "16384"}),
                 "region 'us': start slot '16384'");
  expect_corrupt(with(Partitioner::kSlots, {2, 2}, {"0", "8192", "0"}),
                 "start slots (one per shard) one region after the other: its region_shards need "
                 "4, got 3");
  expect_corrupt(with(Partitioner::kHash, {2, 2}, {"a"}),
                 "split points apply to range and slots partitioning only");
  expect_corrupt(with(Partitioner::kSlots, {}, {"0"}),
                 "a geo keyspace over slots lists start slots only with its layout");
}

TEST(Validate, RefusesStringsThatAreNotUtf8) {
  ClusterMap m = sample();
  m.keyspaces[1].spec.key_prefix = "order\xff";
  EXPECT_NE(validate(m).message().find("key prefix must be UTF-8"), std::string::npos);
  m = sample();
  m.last_change = "bad \xc0\x80 overlong";
  EXPECT_NE(validate(m).message().find("last_change must be one line of UTF-8"), std::string::npos);
  m = sample();
  m.keyspaces[1].spec.key_prefix = "ordé:";  // multi-byte UTF-8 is fine
  EXPECT_TRUE(validate(m).ok()) << validate(m).to_string();
}

}  // namespace
}  // namespace statekv::meta
