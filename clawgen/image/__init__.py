"""Firmware images: LittleFS app filesystem, NVS secrets, partition table, merged firmware.bin.

Entry point for the build pipeline: `clawgen.image.stage.build_images`.
"""
