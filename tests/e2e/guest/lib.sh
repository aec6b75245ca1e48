# SPDX-License-Identifier: BSD-3-Clause
# Helpers shared by the guest-side e2e scripts (busybox sh).  The host runner
# prepends the test's parameters as shell variables and reads the "E2E-MARK"
# lines from the serial console to pace what it does on the host side.

fail() {
    echo "E2E-FAIL: $*"
    echo "---- guest dmesg tail ----"
    dmesg | tail -n 40
    exit 1
}

mark() {
    echo "E2E-MARK $*"
}

# wait_dev NAME: the disk may show up a little after the module loads.
wait_dev() {
    i=0
    while [ ! -b "/dev/$1" ]; do
        if [ "$i" -ge 100 ]; then
            ls /sys/block
            fail "/dev/$1 did not appear"
        fi
        i=$((i + 1))
        sleep 0.1
    done
}

# expect_eq WHAT GOT WANT
expect_eq() {
    [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
    echo "e2e: $1 = $2 (ok)"
}

# The kernel logs failed requests as "I/O error"; any such line means the
# device returned an error status (or the request was lost) at some point.
check_dmesg_clean() {
    if dmesg | grep -iE "I/O error|critical (target|medium) error|blk_update_request|hung_task|task .* blocked" ; then
        fail "kernel reported I/O errors"
    fi
}

# write_pattern DEV OFFSET_BYTES: write /e2e/pattern.bin there, bypassing the
# page cache, and read it back.
write_pattern() {
    sz=$(stat -c %s /e2e/pattern.bin)
    dd if=/e2e/pattern.bin of="$1" bs=65536 seek=$(($2 / 65536)) \
        oflag=direct conv=fsync,notrunc status=none || fail "pattern write at $2 failed"
    check_pattern "$1" "$2"
}

# check_pattern DEV OFFSET_BYTES: compare the device with /e2e/pattern.bin.
check_pattern() {
    sz=$(stat -c %s /e2e/pattern.bin)
    dd if="$1" of=/tmp/readback bs=65536 skip=$(($2 / 65536)) \
        count=$((sz / 65536)) iflag=direct status=none || fail "pattern read at $2 failed"
    cmp /tmp/readback /e2e/pattern.bin || fail "pattern mismatch at $2"
    rm -f /tmp/readback
    echo "e2e: pattern ok at offset $2"
}

# run_fio ARGS...: fio with its output on the console; non-zero exit or a
# job error fails the test.
run_fio() {
    fio --output=/tmp/fio.out "$@"
    rc=$?
    cat /tmp/fio.out
    [ "$rc" -eq 0 ] || fail "fio exited with $rc"
    grep -q "err= 0" /tmp/fio.out || fail "fio reported a job error"
    if grep -qiE "verify: bad|bad magic|crc32c: verify failed" /tmp/fio.out; then
        fail "fio verification failed"
    fi
}

# check_all_queues_used VIRTIO_DEV COUNT [SUFFIX_RE]: each request virtqueue
# of the device (e.g. virtio0) has its own MSI-X vector, named
# "<dev>-req.<n>" in /proc/interrupts (virtio_blk; virtio_scsi names each
# "<dev>-request", pass SUFFIX_RE 'request').  There must be COUNT of them
# and each must have fired, i.e. the server completed requests and
# signalled the guest on every queue.
check_all_queues_used() {
    n=0
    grep -E " $1-${3:-req\.[0-9]+}$" /proc/interrupts > /tmp/irqs
    while read -r line; do
        name=${line##* }
        cnt=$(echo "$line" | awk '{ s = 0; for (i = 2; i <= NF; i++) { if ($i !~ /^[0-9]+$/) break; s += $i } print s }')
        echo "e2e: $name: $cnt interrupts"
        [ "$cnt" -gt 0 ] || fail "queue $name never signalled a completion"
        n=$((n + 1))
    done < /tmp/irqs
    if [ "$n" -ne "$2" ]; then
        cat /proc/interrupts
        fail "$1 has $n request queue vectors, expected $2"
    fi
}
