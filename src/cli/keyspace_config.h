// Keyspaces declared in a TOML file, created through the metadata service by
// `statekv cluster up --keyspaces FILE` and `statekv cluster keyspaces FILE`:
//
//   [[keyspace]]
//   name = "users"
//   prefix = "users:"            # default: "<name>:"
//   partitioner = "ring"         # range | hash | ring | slots | geo (default hash)
//   vnodes = 256                 # ring
//   splits = ["g", "p"]          # range, relative to the prefix: "users:g", "users:p"
//                                # (geo over range: the same splits in every region)
//   replication = "none"         # none | primary-backup-async | ... (default none)
//   factor = 1
//   consistency = "linearizable"
//   partition_mode = "consistency"
//   geo = { "eu:" = "eu", "" = "us" }   # geo: key prefix -> region ("" catches the rest)
//   inner = "hash"               # geo: the partitioner inside a region: range | hash | ring | slots
//
// A keyspace that exists already is left as it is. Keys already under a new
// keyspace's prefix move into it, as KEYSPACE CREATE moves them (a node
// drives the move: coord/keyspace_change.cc); a REPLICATION consensus
// keyspace on either side is refused when keys exist under the prefix. A key the file does not
// know (at the top or in a [[keyspace]]; geo's table takes any prefix) is an
// error naming it and its line, as is a wrong type or value.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "meta/cluster_map.h"

namespace statekv::cli {

// InvalidArgument naming the file, keyspace and field on any mistake.
Result<std::vector<meta::KeyspaceSpec>> read_keyspace_config(const std::string& path);

// Creates each keyspace the map lacks; prints one line per keyspace.
Status apply_keyspace_config(const std::vector<std::string>& endpoints, const std::string& secret,
                             const std::vector<meta::KeyspaceSpec>& specs);

}  // namespace statekv::cli
