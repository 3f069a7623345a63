# snstore — a thin Makefile over CMake. `make run` and `make test` install what is
# missing (Debian packages), build, and run; see README.md.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_FUZZ ?= build-fuzz
BUILD_VALGRIND ?= build-valgrind
FUZZ_SECONDS ?= 60
FUZZ_MERGE ?= 0
CRASH_POINTS ?= 100000
KILL_ITERS ?= 2000
SEED       ?=
JOBS       ?= $(shell nproc)
PREFIX     ?= /usr/local
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# What building and testing need on Debian 12.
DEBS      := cmake ninja-build gcc clang pkg-config liburing-dev libpmem2-dev fio util-linux python3
LINT_DEBS := clang-format clang-tidy cppcheck
# The QEMU DAX guest (tests/dax-vm): make test runs it when these install.
VM_DEBS   := qemu-system-x86 busybox-static cpio kmod e2fsprogs libc6-dev

.PHONY: all deps build run test test-asan test-tsan fuzz valgrind format lint install bench-fio \
	crash-soak test-dax-vm clean

all: build

deps:
	@missing=$$(for p in $(DEBS) $(EXTRA_DEBS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSN_TEST_VM=ON

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# The main job: the seed's comparison, measured on this machine now.
run: build
	$(BUILD)/snstore bench --compare --file $(BUILD)/bench-scratch.dat --size 1g --runtime 3

test: build
	@$(MAKE) --no-print-directory deps EXTRA_DEBS="$(VM_DEBS)" || \
		echo "dax-vm: could not install the guest's packages (the dax_vm test will skip)"
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
		-DSN_SANITIZE=address,undefined
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)

test-tsan: deps
	CC=clang cmake -S . -B $(BUILD_TSAN) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSN_SANITIZE=thread
	cmake --build $(BUILD_TSAN) -j $(JOBS)
	cd $(BUILD_TSAN) && ctest --output-on-failure -j $(JOBS)

# Every libFuzzer target fuzz/fuzz_NAME.c for FUZZ_SECONDS from fuzz/corpus/NAME/; new
# inputs stay in $(BUILD_FUZZ) unless FUZZ_MERGE=1. Fails when a target crashes.
fuzz:
	@$(MAKE) --no-print-directory deps EXTRA_DEBS="clang libclang-rt-dev"
	CC=clang cmake -S . -B $(BUILD_FUZZ) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSN_FUZZ=ON -DBUILD_TESTING=OFF
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzz_all
	sh fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZ_MERGE)

# The CLI under memcheck: any memory error or definite/indirect leak fails. The bad-URI
# case must fail by itself (exit 1 or 2), not through valgrind (99).
VALGRIND = valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--error-exitcode=1
valgrind:
	@$(MAKE) --no-print-directory deps EXTRA_DEBS=valgrind
	cmake -S . -B $(BUILD_VALGRIND) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DBUILD_TESTING=OFF
	cmake --build $(BUILD_VALGRIND) -j $(JOBS) --target snstore_cli
	$(VALGRIND) $(BUILD_VALGRIND)/snstore --help >/dev/null
	$(VALGRIND) $(BUILD_VALGRIND)/snstore probe >/dev/null
	$(VALGRIND) $(BUILD_VALGRIND)/snstore probe $(BUILD_VALGRIND) >/dev/null
	$(VALGRIND) $(BUILD_VALGRIND)/snstore probe --engines >/dev/null
	$(VALGRIND) $(BUILD_VALGRIND)/snstore bench --dev 'null:?size=64m' --runtime 1
	$(VALGRIND) $(BUILD_VALGRIND)/snstore bench --dev 'mem:?size=64m' --rw randrw --runtime 1
	rm -f $(BUILD_VALGRIND)/valgrind.dat
	$(VALGRIND) $(BUILD_VALGRIND)/snstore bench --dev 'uring:$(BUILD_VALGRIND)/valgrind.dat' \
		--size 64m --verify
	$(VALGRIND) $(BUILD_VALGRIND)/snstore bench --dev 'uring:$(BUILD_VALGRIND)/valgrind.dat' \
		--rw randrw --jobs 2 --fsync-every 16 --runtime 1
	rm -f $(BUILD_VALGRIND)/valgrind.dat
	@# The KV store on psync: valgrind does not see io_uring reads fill a buffer.
	$(VALGRIND) $(BUILD_VALGRIND)/snstore kv format \
		'psync:$(BUILD_VALGRIND)/valgrind.kv?create=1&size=64m&direct=1' >/dev/null
	$(VALGRIND) $(BUILD_VALGRIND)/snstore kv put 'psync:$(BUILD_VALGRIND)/valgrind.kv?direct=1' k v
	$(VALGRIND) $(BUILD_VALGRIND)/snstore kv get 'psync:$(BUILD_VALGRIND)/valgrind.kv?direct=1' k
	$(VALGRIND) $(BUILD_VALGRIND)/snstore kv stat 'psync:$(BUILD_VALGRIND)/valgrind.kv?direct=1' \
		>/dev/null
	$(VALGRIND) $(BUILD_VALGRIND)/snstore kvbench --db 'psync:$(BUILD_VALGRIND)/valgrind.kv?direct=1' \
		--num 20000 --benchmarks fillrandom,readrandom,fillsync >/dev/null
	rm -f $(BUILD_VALGRIND)/valgrind.kv
	@for uri in 'nosuch:/x?size=1' 'mem:?size=64q' 'null:?size=1m&size=2m'; do \
		echo "bench --dev '$$uri' (must fail, valgrind-clean)"; rc=0; \
		$(VALGRIND) --error-exitcode=99 $(BUILD_VALGRIND)/snstore bench --dev "$$uri" \
			--runtime 1 || rc=$$?; \
		if [ $$rc = 0 ] || [ $$rc = 99 ]; then echo "exit $$rc"; exit 1; fi; \
	done
	@echo "valgrind: every command clean"

format:
	@$(MAKE) --no-print-directory deps EXTRA_DEBS="$(LINT_DEBS)"
	git ls-files '*.c' '*.h' | xargs clang-format -i

lint: build
	@$(MAKE) --no-print-directory deps EXTRA_DEBS="$(LINT_DEBS)"
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
		--suppress=missingIncludeSystem -Iinclude -Isrc src tools
	git ls-files 'src/*.c' 'tools/*.c' | xargs clang-tidy -p $(BUILD) --quiet --extra-arg=-Wno-unknown-warning-option \
		--warnings-as-errors='*' 2>/dev/null

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The KV crash tests, long: CRASH_POINTS power-loss points on fault:psync and on fault:uring,
# EIO/ENOSPC at every I/O index, KILL_ITERS kill -9 of a process on uring. SEED repeats a run
# (default: from the clock, printed); CRASH_FLAGS=--compact adds sn_kv_compact() calls.
crash-soak: build
	$(BUILD)/tests/test_kv_crash $(BUILD)/tests fault psync --points $(CRASH_POINTS) \
		$(if $(SEED),--seed $(SEED)) $(CRASH_FLAGS)
	$(BUILD)/tests/test_kv_crash $(BUILD)/tests fault uring --points $(CRASH_POINTS) \
		$(if $(SEED),--seed $(SEED)) $(CRASH_FLAGS)
	$(BUILD)/tests/test_kv_crash $(BUILD)/tests errors psync $(CRASH_FLAGS)
	$(BUILD)/tests/test_kv_kill $(BUILD)/tests uring --iters $(KILL_ITERS) $(if $(SEED),--seed $(SEED)) \
		$(CRASH_FLAGS)

# snstore on a real DAX filesystem: Debian's kernel in a QEMU guest (TCG, no KVM needed) with
# an emulated NVDIMM made fsdax, ext4 -o dax, and the dax engine's conformance, KV, kill -9
# and power-cut tests (tests/dax-vm/run.sh; about 2-4 minutes). Exits 0 with "SKIP: why" when
# QEMU or the kernel package cannot be had; DAXVM_TIMEOUT (default 420 s) bounds the guests.
test-dax-vm: build
	@$(MAKE) --no-print-directory deps EXTRA_DEBS="$(VM_DEBS)" || \
		echo "dax-vm: could not install the guest's packages"
	sh tests/dax-vm/run.sh $(BUILD)

# io_uring and psync against fio 3.33 on the same file, in the same run.
bench-fio: build
	bench/vs-fio.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ) $(BUILD_VALGRIND)
