import { closeSync, openSync, writeSync } from "node:fs";
import { CliError } from "./errors.js";

/**
 * Buffered line output to a file or to standard output ("-"). Lines are
 * gathered into ~64 KiB chunks so that a million event lines cost a few
 * hundred writes, not a million.
 */
export class LineWriter {
  readonly #fd: number | null;
  readonly #path: string;
  #buf: string[] = [];
  #size = 0;
  lines = 0;

  constructor(path: string) {
    this.#path = path;
    if (path === "-") {
      this.#fd = null;
    } else {
      try {
        this.#fd = openSync(path, "w");
      } catch (e) {
        throw new CliError(`Cannot write "${path}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 2);
      }
    }
  }

  get toStdout(): boolean {
    return this.#fd === null;
  }

  write(line: string): void {
    this.#buf.push(line);
    this.#size += line.length + 1;
    this.lines++;
    if (this.#size >= 65536) this.flush();
  }

  flush(): void {
    if (this.#buf.length === 0) return;
    const text = this.#buf.join("\n") + "\n";
    this.#buf = [];
    this.#size = 0;
    if (this.#fd === null) process.stdout.write(text);
    else {
      try {
        writeSync(this.#fd, text);
      } catch (e) {
        throw new CliError(`Cannot write "${this.#path}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 2);
      }
    }
  }

  close(): void {
    this.flush();
    if (this.#fd !== null) closeSync(this.#fd);
  }
}
