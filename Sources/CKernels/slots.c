#include "chorus_kernels.h"

// The owner words of a shared-memory slot pool live in memory that several processes map;
// every access is atomic, sequentially consistent across processes on the same machine.

int chorus_slot_claim(unsigned int *owners, int count, unsigned int owner, int start) {
    for (int k = 0; k < count; k++) {
        int index = (start + k) % count;
        unsigned int expected = 0;
        if (__atomic_load_n(&owners[index], __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&owners[index], &expected, owner, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
            return index;
    }
    return -1;
}

int chorus_slot_release(unsigned int *owners, int index, unsigned int owner) {
    unsigned int expected = owner;
    return __atomic_compare_exchange_n(&owners[index], &expected, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

int chorus_slot_transfer(unsigned int *owners, int index, unsigned int from, unsigned int to) {
    unsigned int expected = from;
    return __atomic_compare_exchange_n(&owners[index], &expected, to, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

unsigned int chorus_slot_owner(const unsigned int *owners, int index) {
    return __atomic_load_n(&owners[index], __ATOMIC_SEQ_CST);
}
