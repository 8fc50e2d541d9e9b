#include "patlab/output_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "patlab/error.hpp"

namespace patlab {

void write_output_file(const std::string& path, const std::string& what, const std::function<void(std::ostream&)>& fill,
                       bool binary) {
  const std::string name = "cannot write " + what + " " + path + ": ";
  const std::ios::openmode mode = std::ios::out | std::ios::trunc;
  std::ofstream out(path, binary ? mode | std::ios::binary : mode);
  if (!out) throw Error(ErrorKind::io, name + std::strerror(errno));
  fill(out);
  out.close();  // a full disk shows at the flush
  if (!out) throw Error(ErrorKind::io, name + "write failed (disk full?)");
}

}  // namespace patlab
