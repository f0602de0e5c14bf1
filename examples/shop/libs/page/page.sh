# shellcheck shell=sh
# libs/page: render an HTML page in the shop's layout. Source it;
# PAGE_LIB_DIR points at the directory holding layout.html (default:
# /lib/page, where the web image installs it).

PAGE_LIB_DIR=${PAGE_LIB_DIR:-/lib/page}

# page_render TITLE < BODY_HTML: the layout with @TITLE@ and @BODY@ filled in.
page_render() {
  body=$(cat)
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      *@BODY@*) printf '%s\n' "$body" ;;
      *) printf '%s\n' "$line" | sed "s|@TITLE@|$1|g" ;;
    esac
  done < "$PAGE_LIB_DIR/layout.html"
}
