#!/usr/bin/env bash
# Regenerates wanvid/data/sample.mp4, the video the local emulator (wanvid/emulator.py)
# serves as every task's result. Run once from the repository root; the output is committed.
# Needs ffmpeg with libx264 (only here: the package never calls ffmpeg at runtime).
#
#   1.2 s of testsrc2 at 30 fps (36 frames), 320x192, H.264 (High, yuv420p), no audio,
#   moov atom first (+faststart), CRF 30 (about 20 KB, well under the 60 KB budget),
#   bit-exact flags so a re-run gives the same bytes with the same ffmpeg build
#   (ffmpeg 5.1.9 / Debian 12 made the committed file, sha256 900a8285...e211).
set -euo pipefail
cd "$(dirname "$0")/.."
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=320x192:rate=30:duration=1.2" \
  -c:v libx264 -preset veryslow -crf 30 -pix_fmt yuv420p -threads 1 \
  -an -map_metadata -1 -fflags +bitexact -flags:v +bitexact \
  -movflags +faststart \
  wanvid/data/sample.mp4
ffprobe -v error -count_frames -select_streams v:0 \
  -show_entries stream=codec_name,profile,width,height,nb_read_frames,r_frame_rate:format=duration,size \
  -of default=noprint_wrappers=1 wanvid/data/sample.mp4
