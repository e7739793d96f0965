"""Screenshot of `vidiff serve` with the shipped models after one generation, for docs/serve.md:

    python scripts/screenshot_serve.py docs/images/serve-text-to-video.png

Needs Debian's chromium and chromium-driver and selenium (the test extra)."""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from vidiff.serve import build_app

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--caption", default="a red circle quickly bouncing left and right")
a = p.parse_args()

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
app = build_app(out_dir=tempfile.mkdtemp())
_, url, _ = app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
opts = webdriver.ChromeOptions()
opts.binary_location = shutil.which("chromium")
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1500",
            "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars"):
    opts.add_argument(arg)
driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
try:
    driver.get(url)
    wait = WebDriverWait(driver, 300)
    box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "textarea"))
    box.clear()
    box.send_keys(a.caption)
    driver.find_element(By.ID, "t2v-generate").click()
    video = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#t2v-video video[src]"))
    wait.until(lambda d: d.execute_script("return arguments[0].readyState >= 2 && arguments[0].currentTime > 0.3", video))
    driver.save_screenshot(a.out)
    print(f"wrote {a.out}")
finally:
    driver.quit()
    app.close()
