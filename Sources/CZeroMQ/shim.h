#include <zmq.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

/// Bytes the kernel has received on TCP socket `fd` over its life (tcpi_bytes_received, Linux
/// 4.1+), or -1 when `fd` is not a TCP socket (an ipc connection) or the kernel does not say.
/// The connection guard compares it with what libzmq has handed over from that connection.
///
/// linux/tcp.h's struct tcp_info clashes with glibc's older one (which lacks the field) in
/// Swift's module map, so the field is read at its fixed offset in the kernel's layout (the
/// struct only ever grows at its end): 8 one-byte fields, 24 u32s, then pacing_rate,
/// max_pacing_rate, bytes_acked, bytes_received as u64s.
static inline long long chorus_tcp_bytes_received(int fd) {
    enum { chorus_tcp_info = 11, bytes_received_offset = 8 + 24 * 4 + 3 * 8 };
    unsigned char info[256];
    socklen_t length = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, chorus_tcp_info, info, &length) != 0) return -1;
    if (length < bytes_received_offset + 8) return -1;
    unsigned long long received;
    memcpy(&received, info + bytes_received_offset, sizeof received);
    return (long long)received;
}
