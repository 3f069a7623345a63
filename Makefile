# snstore — a thin Makefile over CMake. `make run` and `make test` install what is
# missing (Debian packages), build, and run; see README.md.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
JOBS       ?= $(shell nproc)
PREFIX     ?= /usr/local
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# What building and testing need on Debian 12.
DEBS      := cmake ninja-build gcc clang pkg-config liburing-dev fio util-linux python3
LINT_DEBS := clang-format clang-tidy cppcheck

.PHONY: all deps build run test test-asan test-tsan format lint install bench-fio clean

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
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# The main job: the seed's comparison, measured on this machine now.
run: build
	$(BUILD)/snstore bench --compare --file $(BUILD)/bench-scratch.dat --size 1g --runtime 3

test: build
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

# io_uring and psync against fio 3.33 on the same file, in the same run.
bench-fio: build
	bench/vs-fio.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN)
