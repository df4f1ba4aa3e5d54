// The copy buttons of the demo client's page: each copies the text of the
// element its data-copy names. Without script the buttons stay hidden and
// the text is selected by hand; where the clipboard is unavailable (plain
// http on another host than localhost) the text is selected for Ctrl+C.
for (const button of document.querySelectorAll('button[data-copy]')) {
  const source = document.getElementById(button.dataset.copy)
  if (!source) continue
  button.hidden = false
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(source.textContent)
      button.textContent = 'Copied'
    } catch {
      const range = document.createRange()
      range.selectNodeContents(source)
      const selection = window.getSelection()
      selection.removeAllRanges()
      selection.addRange(range)
      button.textContent = 'Selected: press Ctrl+C'
    }
  })
}
