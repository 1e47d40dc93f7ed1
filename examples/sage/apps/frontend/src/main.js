// The example Sage page: lists a user's chats from the backend. esbuild bundles it; the dev server injects
// BACKEND_PUBLIC_URL (how the browser reaches the backend) with --define.
const heading = "Sage";
const backend = process.env.BACKEND_PUBLIC_URL || "http://127.0.0.1:3000";
const user = new URLSearchParams(location.search).get("user") || "1";

async function showChats() {
  const status = document.getElementById("status");
  document.getElementById("heading").textContent = heading;
  try {
    const res = await fetch(`${backend}/api/chats?user=${encodeURIComponent(user)}`);
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    const { chats } = await res.json();
    const list = document.getElementById("chats");
    list.replaceChildren(...chats.map((c) => Object.assign(document.createElement("li"), { textContent: c.title })));
    status.textContent = `${chats.length} chats (cache ${res.headers.get("X-Cache") || "?"})`;
    document.title = `${heading}: ${chats.map((c) => c.title).join(", ")}`;
  } catch (e) {
    status.textContent = `backend unreachable at ${backend}: ${e.message}`;
    document.title = `${heading}: backend unreachable`;
  }
}

showChats();
// esbuild's live reload: its dev server sends "change" after each rebuild.
new EventSource("/esbuild").addEventListener("change", () => location.reload());
