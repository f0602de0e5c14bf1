# The toolkit's own container image: the five microplatform tools (monobuild,
# build-with-cache, digest-resolve, stackgen, deploy-bot) plus the programs they
# drive (the docker CLI, git) on a busybox base. The Argo templates in
# scripts/argo/ run it.
#
# No Rust (or any other) image can be pulled on the build machines, so the
# binaries are built on the host and staged, with exactly the shared libraries
# `ldd` says they need, by scripts/toolkit-image, which then builds this file
# with build-with-cache itself (source hash = hash of the staged files, so an
# unchanged toolkit is never rebuilt):
#
#   scripts/toolkit-image --registry 127.0.0.1:5000      # -> 127.0.0.1:5000/microplatform/toolkit:<version>
#
# Build context: the staging directory: rootfs/ holds the files at their final
# paths, rootfs/usr/share/microplatform/programs lists the programs to check.
ARG BASE=127.0.0.1:5000/base/busybox:1

# Stage 1: check the staged files: every program must start in an image that
# holds nothing but busybox and the staged files (so no library is missing).
FROM ${BASE} AS check
COPY rootfs/ /
RUN set -e; \
    for p in $(cat /usr/share/microplatform/programs); do \
      "$p" --version >/dev/null || { echo "staged program $p does not run" >&2; exit 1; }; \
    done; \
    cat /usr/share/microplatform/programs > /checked

# Stage 2: the small final image: busybox (sh, wget, ...) plus the staged
# files; it takes the check's result, so the check cannot be skipped.
FROM ${BASE}
COPY rootfs/ /
COPY --from=check /checked /usr/share/microplatform/checked
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN mkdir -p /work && chmod 1777 /tmp
WORKDIR /work
CMD ["sh"]
